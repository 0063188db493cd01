import crypto from 'node:crypto';
import fs from 'node:fs';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';

// SMTP AUTH users: a text file of "name:hash" lines (smtp.auth.usersFile). A hash is either
// Ferry's scrypt form, made by `ferry hash-password`:
//   $scrypt$ln=15,r=8,p=1$<salt, base64>$<key, base64>
// or bcrypt ($2a$, $2b$, $2y$), as `htpasswd -nB NAME` writes it. Blank lines and lines starting
// with # are ignored. The file is read again when it changes, so users can be added without a
// restart. Passwords are only ever compared through the hash, in constant time.

const scrypt = promisify(crypto.scrypt) as (password: string | Buffer, salt: Buffer, keylen: number, options: crypto.ScryptOptions) => Promise<Buffer>;

const SCRYPT_RE = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;
const BCRYPT_RE = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
/** scrypt cost 2^15 with r=8 needs 32 MiB; node's default maxmem (32 MiB) is just too small. */
const SCRYPT_MAXMEM = 256 * 1024 * 1024;

export class UsersFileError extends Error {
  readonly code = 'FERRY_ERR_USERS_FILE';
  constructor(message: string) {
    super(message);
    this.name = 'UsersFileError';
  }
}

/** Makes a users-file hash for `password` (scrypt, N = 2^15, r = 8, p = 1, 16-byte salt). */
export async function hashPassword(password: string, logN = 15): Promise<string> {
  const salt = crypto.randomBytes(16);
  const key = await scrypt(password.normalize('NFC'), salt, 32, { N: 2 ** logN, r: 8, p: 1, maxmem: SCRYPT_MAXMEM });
  return `$scrypt$ln=${logN},r=8,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True if `password` matches `hash` (scrypt or bcrypt). */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = SCRYPT_RE.exec(hash);
  if (m) {
    const [, ln, r, p, salt, key] = m;
    const expected = Buffer.from(key!, 'base64');
    const actual = await scrypt(password.normalize('NFC'), Buffer.from(salt!, 'base64'), expected.length, {
      N: 2 ** Number(ln),
      r: Number(r),
      p: Number(p),
      maxmem: SCRYPT_MAXMEM,
    });
    return actual.length === expected.length && crypto.timingSafeEqual(actual, expected);
  }
  if (BCRYPT_RE.test(hash)) return bcrypt.compare(password, hash);
  return false;
}

/** Parses the users file's text; a bad line is named with its number (the hash is never shown). */
export function parseUsers(text: string, file = 'users file'): Map<string, string> {
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    const hash = colon > 0 ? line.slice(colon + 1) : '';
    if (!name || !(SCRYPT_RE.test(hash) || BCRYPT_RE.test(hash))) {
      throw new UsersFileError(`${file} line ${i + 1}: expected NAME:HASH with a scrypt hash from "ferry hash-password" or a bcrypt hash ($2b$...)`);
    }
    users.set(name, hash);
  });
  return users;
}

/** The users of smtp.auth.usersFile, re-read when the file changes. */
export class Users {
  private users = new Map<string, string>();
  private stamp = '';
  // Unknown names are checked against one of the file's own hashes (chosen by a keyed hash of
  // the name, so the same name always costs the same), so that they take as long as known ones
  // and the answer time does not tell which names exist. A fixed scrypt decoy would not do:
  // a bcrypt cost-12 user answers in about 300 ms, a decoy of another kind or cost in 90 ms.
  // The decoy is only for a file with no users.
  private readonly standInKey = crypto.randomBytes(32);
  private readonly decoy = hashPassword(crypto.randomBytes(16).toString('hex'));

  private lastError = '';

  /** `onReloadError` hears of a changed file that cannot be used (once per distinct problem). */
  constructor(
    private readonly file: string,
    private readonly onReloadError: (err: Error) => void = () => undefined,
  ) {
    this.reload();
  }

  /** Reads the file if it changed since the last read; throws UsersFileError on a bad file. */
  reload(): void {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch (err) {
      throw new UsersFileError(`cannot read smtp.auth.usersFile ${this.file}: ${(err as Error).message}`);
    }
    const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    if (stamp === this.stamp) return;
    this.users = parseUsers(fs.readFileSync(this.file, 'utf8'), `smtp.auth.usersFile ${this.file}`);
    this.stamp = stamp;
  }

  /** Checks a name and password; a changed file is picked up first (a broken one keeps the old list). */
  async check(name: string, password: string): Promise<boolean> {
    try {
      this.reload();
      this.lastError = '';
    } catch (err) {
      // Keep serving the last good list: a half-saved edit must not lock every user out.
      if ((err as Error).message !== this.lastError) {
        this.lastError = (err as Error).message;
        this.onReloadError(err as Error);
      }
    }
    const hash = this.users.get(name);
    if (hash === undefined) {
      await verifyPassword(password, await this.standInHash(name));
      return false;
    }
    return verifyPassword(password, hash);
  }

  /** The hash an unknown name is checked against: a real user's, so it costs what theirs does. */
  private async standInHash(name: string): Promise<string> {
    const hashes = [...this.users.values()];
    if (hashes.length === 0) return this.decoy;
    const pick = crypto.createHmac('sha256', this.standInKey).update(name).digest().readUInt32BE(0);
    return hashes[pick % hashes.length]!;
  }

  get size(): number {
    return this.users.size;
  }
}
