import fs from 'node:fs';
import path from 'node:path';

// The manifest of the messages test/fixtures/generate.mjs made with real mail composers
// (see test/fixtures/README.md). Empty when they have not been generated.

export interface FixtureAttachment {
  filename: string | null;
  contentType: string;
  size: number;
  sha256: string;
  large: boolean;
  nested?: string;
}
export interface Fixture {
  name: string;
  file: string;
  composer: string;
  from: string;
  to: string[];
  attachments: FixtureAttachment[];
  bodyText: string | null;
  bodyHtml: string | null;
  signed: boolean;
  encrypted: boolean;
  malformed: boolean;
  expectUnchanged: boolean;
  lineEnding: string;
  skipped: string | null;
}

export const FIXTURE_DIR = path.resolve(import.meta.dirname, '../fixtures/generated');
const manifestPath = path.join(FIXTURE_DIR, 'manifest.json');

export const manifest: { threshold: number; fixtures: Fixture[] } = fs.existsSync(manifestPath)
  ? JSON.parse(fs.readFileSync(manifestPath, 'utf8'))
  : { threshold: 102400, fixtures: [] };

/** The raw bytes of a fixture message. */
export function fixtureBytes(f: Fixture): Buffer {
  return fs.readFileSync(path.join(FIXTURE_DIR, f.file));
}
