import fs from 'node:fs';
import type { Config } from '../config/schema.js';
import { parseUsers, UsersFileError } from '../gateway/auth.js';
import { loadSmtpTls } from '../gateway/tls.js';
import { loadKeys } from '../gateway/dkim.js';

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
  // DKIM and ARC keys: readable, a PEM private key, of the type their algorithm names.
  for (const [list, key] of [[config.dkim.keys, 'dkim.keys'], [config.arc.keys ?? [], 'arc.keys']] as const) {
    for (let i = 0; i < list.length; i++) {
      try {
        loadKeys([list[i]!], key, i);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
  }
  for (const [i, k] of (config.arc.keys ?? []).entries()) {
    if (k.algorithm !== 'rsa-sha256') problems.push(`arc.keys[${i}].algorithm = "${k.algorithm}" is not allowed: ARC (RFC 8617) seals with rsa-sha256 only; use an RSA key`);
  }
  return problems;
}
