import { describe, expect, it } from 'vitest';
import { parseRange } from '../../web/range.js';

describe('parseRange', () => {
  const size = 1000;

  it('takes a closed range as is', () => {
    expect(parseRange('bytes=0-99', size)).toEqual({ kind: 'single', range: { start: 0, end: 99 } });
  });

  it('reads -N as the last N bytes', () => {
    expect(parseRange('bytes=-100', size)).toEqual({ kind: 'single', range: { start: 900, end: 999 } });
  });

  it('gives the whole file for a suffix longer than the file', () => {
    expect(parseRange('bytes=-5000', size)).toEqual({ kind: 'single', range: { start: 0, end: 999 } });
  });

  it('reads N- as from N to the end', () => {
    expect(parseRange('bytes=100-', size)).toEqual({ kind: 'single', range: { start: 100, end: 999 } });
  });

  it('clamps an end past EOF', () => {
    expect(parseRange('bytes=990-5000', size)).toEqual({ kind: 'single', range: { start: 990, end: 999 } });
    expect(parseRange('bytes=0-99999999999999999999', size)).toEqual({ kind: 'single', range: { start: 0, end: 999 } });
  });

  it('answers unsatisfiable for a start at or past EOF and for -0', () => {
    expect(parseRange('bytes=1000-', size)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=5000-6000', size)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', size)).toEqual({ kind: 'unsatisfiable' });
  });

  it('keeps the satisfiable part of a list', () => {
    expect(parseRange('bytes=2000-3000, 10-19', size)).toEqual({ kind: 'single', range: { start: 10, end: 19 } });
  });

  it('reports disjoint ranges as multiple', () => {
    expect(parseRange('bytes=0-9,20-29', size)).toEqual({ kind: 'multiple' });
  });

  it('merges overlapping and adjacent ranges into one', () => {
    expect(parseRange('bytes=0-49, 50-99', size)).toEqual({ kind: 'single', range: { start: 0, end: 99 } });
    expect(parseRange('bytes=10-60,0-20', size)).toEqual({ kind: 'single', range: { start: 0, end: 60 } });
  });

  it('calls other units, garbage and inverted ranges malformed', () => {
    for (const h of ['items=0-9', 'bytes=', 'bytes=abc', 'bytes=5-2', 'bytes=1-2-3', 'bytes 0-9', '0-9', 'bytes=0x10-']) {
      expect(parseRange(h, size), h).toEqual({ kind: 'malformed' });
    }
  });

  it('accepts the unit in any case and spaces in the list', () => {
    expect(parseRange('Bytes=0-9 ,', size)).toEqual({ kind: 'single', range: { start: 0, end: 9 } });
  });

  it('treats an absurd number of ranges as multiple without parsing them all', () => {
    const many = 'bytes=' + Array.from({ length: 1000 }, (_, i) => `${i}-${i}`).join(',');
    expect(parseRange(many, size)).toEqual({ kind: 'multiple' });
  });
});
