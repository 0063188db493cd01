import { describe, expect, it } from 'vitest';
import { exactBytes, humanSize, humanTime } from '../../web/format.js';
import { escapeHtml, html } from '../../web/html.js';

describe('format', () => {
  it('writes sizes in decimal units with one decimal below 10', () => {
    expect(humanSize(0)).toBe('0 bytes');
    expect(humanSize(1)).toBe('1 byte');
    expect(humanSize(999)).toBe('999 bytes');
    expect(humanSize(1000)).toBe('1.0 kB');
    expect(humanSize(1_234_567)).toBe('1.2 MB');
    expect(humanSize(52_428_800)).toBe('52 MB');
    expect(humanSize(3_000_000_000)).toBe('3.0 GB');
  });

  it('groups exact byte counts regardless of locale', () => {
    expect(exactBytes(0)).toBe('0');
    expect(exactBytes(1_234_567)).toBe('1,234,567');
    expect(exactBytes(1000)).toBe('1,000');
  });

  it('writes times in UTC and says so', () => {
    expect(humanTime(Date.UTC(2025, 0, 5, 3, 7, 59))).toBe('5 Jan 2025, 03:07 UTC');
  });
});

describe('html', () => {
  it('escapes every interpolated string, and nested Html only once', () => {
    const name = `<img src=x onerror="alert('1')">&`;
    const inner = html`<b>${name}</b>`;
    expect(html`<p title="${name}">${inner}${[name, null, false, undefined]}</p>`.value).toBe(
      `<p title="${escapeHtml(name)}"><b>&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;</b>&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;</p>`,
    );
  });
});
