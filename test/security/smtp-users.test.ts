import fs from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { hashPassword, Users } from '../../gateway/auth.js';
import { tempDir } from '../helpers/ferry.js';

// SMTP AUTH must not tell a guesser which user names exist. A wrong password for a known name
// costs one check of that user's hash; an unknown name must cost a check of the same kind and
// cost, or the answer time (bcrypt cost 12: about 300 ms; Ferry's scrypt: about 90 ms) says
// whether the name is in smtp.auth.usersFile.

describe('SMTP users file: unknown names cost what known ones do', () => {
  afterEach(() => vi.restoreAllMocks());

  it('checks an unknown name against a bcrypt hash when the users have bcrypt hashes', async () => {
    const d = tempDir('ferry-sec-users-');
    const file = path.join(d, 'users');
    fs.writeFileSync(file, `alice:${bcrypt.hashSync('alice-pw', 4)}\nbob:${bcrypt.hashSync('bob-pw', 4)}\n`);
    const users = new Users(file);
    const compare = vi.spyOn(bcrypt, 'compare');
    expect(await users.check('alice', 'wrong')).toBe(false);
    expect(compare).toHaveBeenCalledTimes(1);
    for (const name of ['mallory', 'root', 'postmaster']) expect(await users.check(name, 'alice-pw')).toBe(false);
    // Each unknown name went through bcrypt, like a known one.
    expect(compare).toHaveBeenCalledTimes(4);
    expect(await users.check('alice', 'alice-pw')).toBe(true);
    fs.rmSync(d, { recursive: true, force: true });
  });

  it('an unknown name never logs in, even with a password of a real user', async () => {
    const d = tempDir('ferry-sec-users-');
    const file = path.join(d, 'users');
    fs.writeFileSync(file, `alice:${await hashPassword('shared-pw', 10)}\n`);
    const users = new Users(file);
    for (const name of ['bob', 'carol', '', 'alice ', 'Alice']) expect(await users.check(name, 'shared-pw')).toBe(false);
    expect(await users.check('alice', 'shared-pw')).toBe(true);
    fs.rmSync(d, { recursive: true, force: true });
  });
});
