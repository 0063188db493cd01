import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { checkConfigFiles } from '../../cli/check-files.js';
import { loadConfig } from '../../config/index.js';
import { parseS3Url } from '../../config/s3-url.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';

// There is no Docker engine on the machines this suite runs on, so the Dockerfile and
// docker-compose.yml are checked as far as possible without one: the compose file parses and
// refers only to what it defines, the configuration it mounts passes Ferry's own checks and
// agrees with the services, and the Dockerfile has the structure the README promises. The
// image's healthcheck script runs for real against a Ferry.

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const read = (p: string) => fs.readFileSync(path.join(ROOT, p), 'utf8');

interface Service {
  build?: string | { context: string };
  image?: string;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string> | string[];
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] | string };
}

const compose = parseYaml(read('docker-compose.yml')) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;
const envOf = (s: Service): Record<string, string> =>
  Array.isArray(s.environment) ? Object.fromEntries(s.environment.map((e) => e.split(/=(.*)/s).slice(0, 2) as [string, string])) : { ...(s.environment ?? {}) };

describe('docker-compose.yml', () => {
  it('has Ferry, PostgreSQL, MinIO with a bucket-creating job, and Mailpit', () => {
    expect(Object.keys(services).sort()).toEqual(['ferry', 'mailpit', 'minio', 'minio-init', 'postgres']);
    expect(services.ferry!.build).toBe('.');
    expect(services.postgres!.image).toMatch(/^postgres:/);
    // Not Docker Hub's minio/minio: MinIO removed it (September 2026); quay.io serves the images.
    expect(services.minio!.image).toMatch(/^quay\.io\/minio\/minio:/);
    expect(services['minio-init']!.image).toMatch(/^quay\.io\/minio\/mc:/);
    expect(services.mailpit!.image).toMatch(/^axllent\/mailpit/);
  });

  it('refers only to services and named volumes it defines', () => {
    const named = new Set(Object.keys(compose.volumes ?? {}));
    for (const [name, s] of Object.entries(services)) {
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      for (const d of deps) expect(Object.keys(services), `${name} depends on ${d}`).toContain(d);
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0]!;
        if (source.startsWith('.') || source.startsWith('/')) expect(fs.existsSync(path.join(ROOT, source)), `${name} mounts ${source}`).toBe(true);
        else expect(named.has(source), `${name} uses volume ${source}`).toBe(true);
      }
    }
    // Every defined volume is used.
    const used = Object.values(services).flatMap((s) => (s.volumes ?? []).map((v) => v.split(':')[0]!));
    for (const v of named) expect(used).toContain(v);
  });

  it('publishes ports on loopback only (the compose network is trusted to relay)', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) expect(p, `${name} port ${p}`).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
    const ferryPorts = services.ferry!.ports!.map((p) => p.split(':').slice(1).join(':'));
    expect(ferryPorts).toEqual(['2525:2525', '8080:8080', '9464:9464']);
  });

  it('mounts a ferry.yaml that passes `ferry check-config` and agrees with the other services', () => {
    const ferry = services.ferry!;
    const env = envOf(ferry);
    const mount = ferry.volumes!.find((v) => v.endsWith(':/etc/ferry/ferry.yaml:ro'))!;
    expect(env.FERRY_CONFIG).toBe('/etc/ferry/ferry.yaml');
    const file = path.join(ROOT, mount.split(':')[0]!);
    const { FERRY_CONFIG: _ignored, ...settings } = env;
    const config = loadConfig({ file, env: settings });
    expect(checkConfigFiles(config)).toEqual([]);

    // The data volume is the image's /data, and the ports are the published ones.
    expect(ferry.volumes).toContain('ferry-data:/data');
    expect(config.dataDir).toBe('/data');
    expect(config.smtp.port).toBe(2525);
    expect(config.web.port).toBe(8080);
    expect(config.metrics.port).toBe(9464);
    expect(new URL(config.web.publicUrl).port).toBe('8080');

    // Next hop: the Mailpit service's SMTP port.
    expect(config.relay.url).toBe('smtp://mailpit:1025');

    // PostgreSQL: the service's user, password and database.
    const pg = envOf(services.postgres!);
    const db = new URL(config.storage.database);
    expect([db.protocol, db.hostname, db.port, db.username, decodeURIComponent(db.password), db.pathname]).toEqual([
      'postgres:',
      'postgres',
      '5432',
      pg.POSTGRES_USER,
      pg.POSTGRES_PASSWORD,
      `/${pg.POSTGRES_DB}`,
    ]);

    // MinIO: the endpoint of the service, the credentials of its root user, and the bucket that
    // minio-init creates.
    const s3 = parseS3Url(config.storage.blobs);
    const minio = envOf(services.minio!);
    expect(s3.endpoint).toBe('http://minio:9000');
    expect(s3.forcePathStyle).toBe(true);
    expect(config.storage.s3.accessKeyId).toBe(minio.MINIO_ROOT_USER);
    expect(config.storage.s3.secretAccessKey).toBe(minio.MINIO_ROOT_PASSWORD);
    const init = [services['minio-init']!.command].flat().join(' ');
    expect(init).toContain(`mc alias set local http://minio:9000 ${minio.MINIO_ROOT_USER} ${minio.MINIO_ROOT_PASSWORD}`);
    expect(init).toContain(`mc mb --ignore-existing local/${s3.bucket}`);

    // Ferry waits for the database, the bucket and the next hop.
    expect(ferry.depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      'minio-init': { condition: 'service_completed_successfully' },
      mailpit: { condition: 'service_started' },
    });
  });
});

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function instructions(text: string): { op: string; args: string }[] {
  const joined = text.replace(/\\\r?\n/g, ' ');
  return joined
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

describe('Dockerfile', () => {
  const ins = instructions(read('Dockerfile'));
  const KNOWN = ['FROM', 'ARG', 'ENV', 'WORKDIR', 'RUN', 'COPY', 'VOLUME', 'USER', 'EXPOSE', 'HEALTHCHECK', 'STOPSIGNAL', 'ENTRYPOINT', 'CMD', 'LABEL'];
  const stages = ins.map((x, i) => ({ ...x, i })).filter((x) => x.op === 'FROM');
  const final = ins.slice(stages.at(-1)!.i);
  const arg = (name: string) => /=(.*)$/.exec(ins.find((x) => x.op === 'ARG' && x.args.startsWith(`${name}=`))?.args ?? '')?.[1];

  it('is multi-stage on Node 24 slim, and every instruction is a known one', () => {
    for (const x of ins) expect(KNOWN, x.op).toContain(x.op);
    expect(stages.length).toBe(2);
    expect(arg('NODE_IMAGE')).toBe('node:24-slim');
    expect(stages[0]!.args).toBe('${NODE_IMAGE} AS build');
    expect(stages[1]!.args).toBe('${NODE_IMAGE}');
    // The runtime stage takes the build's output, not a second npm install.
    expect(final.filter((x) => x.op === 'COPY' && x.args.startsWith('--from=build')).length).toBeGreaterThanOrEqual(3);
    expect(final.some((x) => x.op === 'RUN' && /npm (ci|install)/.test(x.args))).toBe(false);
  });

  it('runs `ferry start` as the non-root node user, with /data as a volume and a healthcheck', () => {
    const user = final.filter((x) => x.op === 'USER').at(-1);
    expect(user?.args).toBe('node');
    expect(final.findIndex((x) => x.op === 'USER')).toBeLessThan(final.findIndex((x) => x.op === 'ENTRYPOINT'));
    expect(JSON.parse(final.find((x) => x.op === 'ENTRYPOINT')!.args)).toEqual(['node', '/app/bin/ferry.js']);
    expect(JSON.parse(final.find((x) => x.op === 'CMD')!.args)).toEqual(['start']);
    expect(JSON.parse(final.find((x) => x.op === 'VOLUME')!.args)).toEqual(['/data']);
    expect(final.find((x) => x.op === 'RUN' && x.args.includes('chown node:node /data'))).toBeDefined();
    expect(final.find((x) => x.op === 'ENV')!.args).toContain('FERRY_DATA_DIR=/data');
    const hc = final.find((x) => x.op === 'HEALTHCHECK')!.args;
    expect(JSON.parse(hc.slice(hc.indexOf('CMD') + 3).trim())).toEqual(['node', '/app/deploy/docker/healthcheck.mjs']);
  });

  it('copies only files that exist and that .dockerignore lets through', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const x of ins.filter((y) => y.op === 'COPY' && !y.args.startsWith('--from='))) {
      const parts = x.args.split(/\s+/);
      for (const src of parts.slice(0, -1)) {
        expect(fs.existsSync(path.join(ROOT, src)), `COPY ${src}`).toBe(true);
        // The last pattern that matches decides; "!pattern" lets a path through again.
        let isIgnored = false;
        for (const p of ignored) {
          const pat = p.replace(/^!/, '');
          if (src === pat || src.startsWith(`${pat}/`)) isIgnored = !p.startsWith('!');
        }
        expect(isIgnored, `COPY ${src} is in .dockerignore`).toBe(false);
      }
    }
    // What the build stage compiles is what tsconfig.build.json includes.
    const include = (JSON.parse(read('tsconfig.build.json')) as { include: string[] }).include.filter((d) => fs.existsSync(path.join(ROOT, d)));
    for (const d of include) expect(ins.some((x) => x.op === 'COPY' && x.args === `${d} ./${d}`), `COPY ${d}`).toBe(true);
    // ... and the script `npm ci` runs to bundle it (package.json's "build").
    expect((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.build).toBe('node scripts/build.mjs');
    const copied = ins.findIndex((x) => x.op === 'COPY' && x.args === 'scripts/build.mjs ./scripts/build.mjs');
    expect(copied).toBeGreaterThan(-1);
    expect(copied).toBeLessThan(ins.findIndex((x) => x.op === 'RUN' && x.args.startsWith('npm ci')));
  });
});

describe('the image healthcheck script', () => {
  let ferry: TestFerry;
  let stopped = false;
  beforeAll(async () => {
    ferry = await startFerry();
  });
  afterAll(async () => {
    if (!stopped) await ferry?.stopAndClean();
  });

  const runCheck = (url: string) =>
    new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [path.join(ROOT, 'deploy/docker/healthcheck.mjs')], { env: { FERRY_HEALTHCHECK_URL: url }, timeout: 20_000 }, (err, _out, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
      );
    });

  it('succeeds against a running Ferry and fails when nothing answers', async () => {
    expect((await runCheck(`${ferry.publicUrl}/healthz`)).code).toBe(0);
    await ferry.stopAndClean();
    stopped = true;
    const down = await runCheck(`${ferry.publicUrl}/healthz`);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/ECONNREFUSED/);
  });
});
