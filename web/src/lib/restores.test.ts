import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  CommandInfoSchema,
  CommandKind,
  CommandPhase,
  CommandState,
  type CommandInfo,
  type CommandProgress,
  type RestoreResult,
} from './pb';
import {
  FINISHED_RESTORES_CAP,
  applyRestoreEvent,
  phaseKey,
  progressView,
  restoreResult,
  resultSummary,
  sortedRestores,
  stateKey,
  stateLabel,
  upsertRestore,
  type RestoreBook,
} from './restores';
import { event, snapshotEvent, pkg } from './testdata';
import { LiveStore } from './store.svelte';

type Init<T> = Omit<Partial<T>, '$typeName' | '$unknown'>;

function restore(
  id: string,
  state: CommandState,
  o: { createdMs?: number; finishedMs?: number; progress?: Init<CommandProgress>; result?: Init<RestoreResult>; message?: string } = {},
): CommandInfo {
  return create(CommandInfoSchema, {
    command: {
      commandId: id,
      kind: CommandKind.RESTORE,
      args: { kind: { case: 'restore', value: { sourceId: 'edge-a', folders: ['/data'], paths: ['docs/a.txt'], targetDir: '/srv/r' } } },
    },
    sourceId: 'edge-a',
    state,
    createdAt: timestampFromMs(o.createdMs ?? 1000),
    finishedAt: o.finishedMs !== undefined ? timestampFromMs(o.finishedMs) : undefined,
    progress: o.progress,
    resultDetails: o.result ? { kind: { case: 'restore', value: o.result } } : undefined,
    resultMessage: o.message ?? '',
  });
}

describe('restores reducer', () => {
  it('a snapshot replaces the restores, restore_changed replaces one', () => {
    const book: RestoreBook = new Map();
    expect(applyRestoreEvent(book, snapshotEvent({ restores: [restore('r1', CommandState.PENDING), restore('r2', CommandState.SUCCEEDED)] }))).toBe(true);
    expect([...book.keys()]).toEqual(['r1', 'r2']);
    const running = restore('r1', CommandState.LEASED, { progress: { phase: CommandPhase.TRANSFERRING, filesDone: 1n, filesTotal: 4n } });
    expect(applyRestoreEvent(book, event({ case: 'restoreChanged', value: running }))).toBe(true);
    expect(book.get('r1')?.state).toBe(CommandState.LEASED);
    expect(book.get('r1')?.progress?.filesDone).toBe(1n);
    applyRestoreEvent(book, event({ case: 'restoreChanged', value: restore('r3', CommandState.PENDING) }));
    expect(book.size).toBe(3);
    // other events leave restores alone
    expect(applyRestoreEvent(book, event({ case: 'packageChanged', value: pkg('p1') }))).toBe(false);
    // a new snapshot starts over
    applyRestoreEvent(book, snapshotEvent({ restores: [] }));
    expect(book.size).toBe(0);
  });

  it('a finished restore never reopens, and a CreateCommand answer never overrides the stream', () => {
    const book: RestoreBook = new Map();
    applyRestoreEvent(book, event({ case: 'restoreChanged', value: restore('r1', CommandState.SUCCEEDED, { finishedMs: 5000 }) }));
    expect(applyRestoreEvent(book, event({ case: 'restoreChanged', value: restore('r1', CommandState.LEASED) }))).toBe(false);
    expect(book.get('r1')?.state).toBe(CommandState.SUCCEEDED);
    // the unary answer (pending) arrives after the stream said it runs
    applyRestoreEvent(book, event({ case: 'restoreChanged', value: restore('r2', CommandState.LEASED) }));
    expect(upsertRestore(book, restore('r2', CommandState.PENDING), false)).toBe(false);
    expect(book.get('r2')?.state).toBe(CommandState.LEASED);
    expect(upsertRestore(book, restore('r3', CommandState.PENDING), false)).toBe(true);
    // an info without a command id is ignored
    expect(upsertRestore(book, create(CommandInfoSchema, {}), true)).toBe(false);
  });

  it(`keeps every open restore and the newest ${FINISHED_RESTORES_CAP} finished ones`, () => {
    const book: RestoreBook = new Map();
    applyRestoreEvent(book, event({ case: 'restoreChanged', value: restore('open', CommandState.PENDING) }));
    for (let i = 0; i < FINISHED_RESTORES_CAP + 5; i++) {
      applyRestoreEvent(book, event({ case: 'restoreChanged', value: restore(`f${i}`, CommandState.FAILED, { finishedMs: 10_000 + i }) }));
    }
    expect(book.size).toBe(FINISHED_RESTORES_CAP + 1);
    expect(book.has('open')).toBe(true);
    expect(book.has('f0')).toBe(false);
    expect(book.has(`f${FINISHED_RESTORES_CAP + 4}`)).toBe(true);
  });

  it('lists open restores first, oldest first, then finished ones, newest first', () => {
    const book: RestoreBook = new Map();
    applyRestoreEvent(
      book,
      snapshotEvent({
        restores: [
          restore('done-old', CommandState.SUCCEEDED, { createdMs: 1, finishedMs: 100 }),
          restore('open-new', CommandState.LEASED, { createdMs: 300 }),
          restore('done-new', CommandState.FAILED, { createdMs: 2, finishedMs: 200 }),
          restore('open-old', CommandState.PENDING, { createdMs: 50 }),
        ],
      }),
    );
    expect(sortedRestores(book).map((r) => r.command?.commandId)).toEqual(['open-old', 'open-new', 'done-new', 'done-old']);
  });

  it('the live store keeps restores from the stream and bumps restoresV once per flush', () => {
    const store = new LiveStore();
    store.apply(snapshotEvent({ restores: [restore('r1', CommandState.PENDING)] }));
    store.apply(event({ case: 'restoreChanged', value: restore('r1', CommandState.LEASED) }));
    store.flush();
    expect(store.restoresV).toBe(1);
    expect(store.restores.get('r1')?.state).toBe(CommandState.LEASED);
    store.mergeRestore(restore('r1', CommandState.PENDING));
    store.flush();
    expect(store.restoresV).toBe(1);
    store.mergeRestore(restore('r2', CommandState.PENDING));
    store.flush();
    expect(store.restoresV).toBe(2);
    expect(store.restores.size).toBe(2);
  });
});

describe('restore progress and result', () => {
  it('spells states and phases', () => {
    expect(stateKey(CommandState.LEASED)).toBe('leased');
    expect(stateLabel(CommandState.PENDING)).toBe('queued');
    expect(stateLabel(CommandState.LEASED)).toBe('running');
    expect(stateLabel(CommandState.SUCCEEDED)).toBe('succeeded');
    expect(stateLabel(CommandState.FAILED)).toBe('failed');
    expect(phaseKey(CommandPhase.TRANSFERRING)).toBe('transferring');
    expect(phaseKey(CommandPhase.UNSPECIFIED)).toBe('');
    expect(phaseKey(undefined)).toBe('');
  });

  it('shows files and bytes done of the totals, unknown while planning', () => {
    expect(progressView(restore('r', CommandState.PENDING))).toMatchObject({ filesPct: undefined, bytesPct: undefined, filesText: 'no progress yet', phase: '' });
    const planning = progressView(restore('r', CommandState.LEASED, { progress: { phase: CommandPhase.PLANNING } }));
    expect(planning).toMatchObject({ filesPct: undefined, bytesPct: undefined, filesText: '0 files', bytesText: '0 B', phase: 'planning' });
    const moving = progressView(
      restore('r', CommandState.LEASED, {
        progress: { phase: CommandPhase.TRANSFERRING, filesDone: 3n, filesTotal: 8n, bytesDone: 512n * 1024n, bytesTotal: 2048n * 1024n },
      }),
    );
    expect(moving).toEqual({ filesPct: 37, bytesPct: 25, filesText: '3 of 8 files', bytesText: '512 KiB of 2 MiB', phase: 'transferring' });
    // never beyond 100 %
    const over = progressView(restore('r', CommandState.LEASED, { progress: { phase: CommandPhase.FINISHING, filesDone: 9n, filesTotal: 8n } }));
    expect(over.filesPct).toBe(100);
  });

  it('a succeeded restore is complete, counted from its result', () => {
    const r = restore('r', CommandState.SUCCEEDED, {
      progress: { phase: CommandPhase.TRANSFERRING, filesDone: 1n, filesTotal: 3n, bytesDone: 10n, bytesTotal: 30n },
      result: { files: 2n, bytes: 30n, unchanged: 1n, directories: 1n, links: 0n },
    });
    expect(progressView(r)).toEqual({ filesPct: 100, bytesPct: 100, filesText: '3 of 3 files', bytesText: '30 B of 30 B', phase: 'done' });
    const result = restoreResult(r);
    expect(result && resultSummary(result)).toBe('2 files (30 B), 1 directory, 0 links; 1 already there');
    expect(resultSummary(restoreResult(restore('x', CommandState.SUCCEEDED, { result: { files: 1n, bytes: 1536n, directories: 2n, links: 1n } }))!)).toBe(
      '1 file (1.5 KiB), 2 directories, 1 link',
    );
  });
});
