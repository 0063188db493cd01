import fs from 'node:fs';
import type { Config } from '../config/schema.js';
import { parseUsers, UsersFileError } from '../gateway/auth.js';
import { loadSmtpTls } from '../gateway/tls.js';

/**
 * The files the configuration names, checked as start-up would: the SMTP certificate and key,
 * the SMTP AUTH users file. Returns the problems, each naming the key; [] when all is well.
 */
export function checkConfigFiles(config: Config): string[] {
  const problems: string[] = [];
  const { tls, auth } = config.smtp;
  if (tls.cert && tls.key) {
    try {
      loadSmtpTls({ cert: tls.cert, key: tls.key });
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (auth.usersFile) {
    try {
      const users = parseUsers(fs.readFileSync(auth.usersFile, 'utf8'), `smtp.auth.usersFile ${auth.usersFile}`);
      if (users.size === 0) problems.push(`smtp.auth.usersFile ${auth.usersFile} has no users; add lines made with "ferry hash-password NAME"`);
    } catch (err) {
      problems.push(err instanceof UsersFileError ? err.message : `smtp.auth.usersFile: cannot read ${auth.usersFile}: ${(err as Error).message}`);
    }
  }
  return problems;
}
