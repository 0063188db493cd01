import readline from 'node:readline';
import { Writable } from 'node:stream';
import { hashPassword } from '../gateway/auth.js';

// `ferry hash-password [NAME]`: prints a line for smtp.auth.usersFile. The password is read from
// standard input (asked twice, without echo, in a terminal; the first line otherwise), never from
// the command line, where it would end up in the shell history and in `ps`.

async function readHidden(prompt: string): Promise<string> {
  let muted = false;
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = readline.createInterface({ input: process.stdin, output: out, terminal: true });
  return new Promise((resolve) => {
    rl.question(prompt, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}

async function readFirstLine(): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    rl.close();
    return line;
  }
  return '';
}

export async function hashPasswordCommand(rest: string[]): Promise<number> {
  const name = rest.find((a) => !a.startsWith('-'));
  if (name !== undefined && (name.includes(':') || /\s/.test(name) || !name)) {
    console.error('ferry hash-password: a user name may not contain ":" or spaces');
    return 2;
  }
  let password: string;
  if (process.stdin.isTTY) {
    password = await readHidden('Password: ');
    if ((await readHidden('Again: ')) !== password) {
      console.error('ferry hash-password: the two passwords differ');
      return 1;
    }
  } else {
    password = await readFirstLine();
  }
  if (!password) {
    console.error('ferry hash-password: empty password');
    return 1;
  }
  const hash = await hashPassword(password);
  console.log(name ? `${name}:${hash}` : hash);
  return 0;
}
