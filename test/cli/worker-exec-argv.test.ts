import { describe, expect, it } from 'vitest';
import { workerExecArgv, workerMallocEnv } from '../../cli/cluster.js';

// The node options of the worker processes (cli/cluster.ts): the primary's own, without a script
// given on the command line, plus the smaller young generation unless the admin chose one; and
// their environment's malloc arenas.

describe('worker node options', () => {
  it('adds the smaller young generation to what the primary was started with', () => {
    expect(workerExecArgv(['--import', 'tsx'], '')).toEqual(['--import', 'tsx', '--max-semi-space-size=8']);
  });

  it("leaves the admin's own setting, from NODE_OPTIONS or the command line, in any spelling", () => {
    expect(workerExecArgv([], '--max-old-space-size=512 --max-semi-space-size=16')).toEqual([]);
    expect(workerExecArgv(['--max_semi_space_size=2'], '')).toEqual(['--max_semi_space_size=2']);
    expect(workerExecArgv(['--max-semi-space-size', '4'], undefined)).toEqual(['--max-semi-space-size', '4']);
  });

  it('never passes on a script given with -e or -p', () => {
    expect(workerExecArgv(['-e', 'import("x")', '--trace-warnings'], '')).toEqual(['--trace-warnings', '--max-semi-space-size=8']);
  });

  it("caps glibc's malloc arenas at 2 unless the admin set them, by variable or tunable", () => {
    expect(workerMallocEnv({})).toEqual({ MALLOC_ARENA_MAX: '2' });
    expect(workerMallocEnv({ MALLOC_ARENA_MAX: '4' })).toEqual({});
    expect(workerMallocEnv({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=131072:glibc.malloc.arena_max=1' })).toEqual({});
    expect(workerMallocEnv({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=131072' })).toEqual({ MALLOC_ARENA_MAX: '2' });
  });
});
