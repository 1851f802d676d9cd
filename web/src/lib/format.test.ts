import { describe, expect, it } from 'vitest';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  baseName,
  formatAge,
  formatApproxDuration,
  formatBytes,
  formatCount,
  formatDue,
  formatWait,
  percent,
  shortHash,
} from './format';

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [6, '6 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [10 * 1024 * 1024 + 300 * 1024, '10.3 MiB'],
    [150 * 1024 ** 3, '150 GiB'],
    [2.25 * 1024 ** 4, '2.25 TiB'],
  ])('%d -> %s', (n, text) => expect(formatBytes(n)).toBe(text));

  it('takes bigint', () => expect(formatBytes(5n * 1024n ** 5n)).toBe('5 PiB'));
  it('rejects nonsense', () => expect(formatBytes(-1)).toBe('—'));
});

describe('formatWait', () => {
  it.each([
    [0, '0 s'],
    [10, '10 s'],
    [90, '90 s'],
    [120, '2 min'],
    [7200, '2 h'],
    [86400, '1 d'],
    [7 * 86400, '7 d'],
    [2555 * 86400, '7 y'],
    [400 * 86400, '400 d'],
    [3661, '1 h 1 min 1 s'],
  ])('%d s -> %s', (s, text) => expect(formatWait(s)).toBe(text));
});

describe('formatApproxDuration', () => {
  it.each([
    [0, '0 s'],
    [999, '0 s'],
    [45_000, '45 s'],
    [65_000, '1 min 5 s'],
    [3 * 3600_000 + 12 * 60_000 + 5000, '3 h 12 min'],
    [86400_000 + 5000, '1 d'],
    [2 * 86400_000 + 4 * 3600_000, '2 d 4 h'],
  ])('%d ms -> %s', (ms, text) => expect(formatApproxDuration(ms)).toBe(text));
});

describe('ages', () => {
  const now = 1_700_000_000_000;
  it('past and future', () => {
    expect(formatAge(timestampFromMs(now - 5 * 60_000), now)).toBe('5 min ago');
    expect(formatAge(timestampFromMs(now + 3 * 3600_000), now)).toBe('in 3 h');
    expect(formatAge(now - 200, now)).toBe('just now');
    expect(formatAge(undefined, now)).toBe('—');
  });
  it('due times', () => {
    expect(formatDue(timestampFromMs(now + 3 * 3600_000), now)).toBe('in 3 h');
    expect(formatDue(timestampFromMs(now - 90_000), now)).toBe('1 min 30 s overdue');
    expect(formatDue(undefined, now)).toBe('—');
  });
});

describe('small helpers', () => {
  it('counts', () => expect(formatCount(1234567n)).toBe('1,234,567'));
  it('hashes', () => {
    expect(shortHash('0123456789abcdef0123')).toBe('0123456789ab…');
    expect(shortHash('')).toBe('—');
  });
  it('percent clamps', () => {
    expect(percent(140)).toBe(100);
    expect(percent(-3)).toBe(0);
    expect(percent(undefined)).toBe(0);
  });
  it('baseName', () => {
    expect(baseName('data/backup-001.log')).toBe('backup-001.log');
    expect(baseName('sample.txt')).toBe('sample.txt');
    expect(baseName('dir/sub/')).toBe('sub');
  });
});
