// Restores as the Watch stream reports them (FleetSnapshot.restores, WatchEvent.restore_changed),
// kept by command id, and how one is described: state, phase, progress, result.
import {
  CommandPhase,
  CommandPhaseSchema,
  CommandState,
  CommandStateSchema,
  type CommandInfo,
  type RestoreArgs,
  type RestoreResult,
  type WatchEvent,
} from './pb';
import { enumSpelling } from './enums';
import { formatBytes, formatCount, num, plural, timestampToMs } from './format';

/** Finished restores kept besides the open ones (the snapshot brings up to 20). */
export const FINISHED_RESTORES_CAP = 50;

export type RestoreBook = Map<string, CommandInfo>;

export function restoreId(info: CommandInfo): string {
  return info.command?.commandId ?? '';
}

export function isFinished(state: CommandState): boolean {
  return state === CommandState.SUCCEEDED || state === CommandState.FAILED;
}

/**
 * Applies one Watch event to the restores: a snapshot replaces them, restore_changed replaces
 * one. Returns whether anything changed (other events leave them alone).
 */
export function applyRestoreEvent(book: RestoreBook, ev: WatchEvent): boolean {
  switch (ev.kind.case) {
    case 'snapshot':
      book.clear();
      for (const r of ev.kind.value.restores) {
        const id = restoreId(r);
        if (id) book.set(id, r);
      }
      prune(book);
      return true;
    case 'restoreChanged':
      return upsertRestore(book, ev.kind.value, true);
    default:
      return false;
  }
}

/**
 * Stores one restore. A live update replaces what is held, except that a finished restore never
 * goes back to open; one from a unary answer (CreateCommand) only fills a gap, since the stream
 * may already have told more.
 */
export function upsertRestore(book: RestoreBook, info: CommandInfo, live: boolean): boolean {
  const id = restoreId(info);
  if (!id) return false;
  const held = book.get(id);
  if (held && (!live || (isFinished(held.state) && !isFinished(info.state)))) return false;
  book.set(id, info);
  prune(book);
  return true;
}

/** Keeps every open restore and the newest finished ones. */
function prune(book: RestoreBook): void {
  const finished = [...book.values()].filter((r) => isFinished(r.state));
  if (finished.length <= FINISHED_RESTORES_CAP) return;
  finished.sort((a, b) => finishedMs(b) - finishedMs(a));
  for (const r of finished.slice(FINISHED_RESTORES_CAP)) book.delete(restoreId(r));
}

function finishedMs(r: CommandInfo): number {
  return timestampToMs(r.finishedAt) ?? timestampToMs(r.createdAt) ?? 0;
}

/** Open restores first (oldest first: the order they run in), then finished ones, newest first. */
export function sortedRestores(book: RestoreBook): CommandInfo[] {
  const all = [...book.values()];
  const open = all.filter((r) => !isFinished(r.state));
  const done = all.filter((r) => isFinished(r.state));
  open.sort((a, b) => (timestampToMs(a.createdAt) ?? 0) - (timestampToMs(b.createdAt) ?? 0) || restoreId(a).localeCompare(restoreId(b)));
  done.sort((a, b) => finishedMs(b) - finishedMs(a) || restoreId(b).localeCompare(restoreId(a)));
  return [...open, ...done];
}

/** "pending", "leased", "succeeded", "failed" (test ids, CSS). */
export function stateKey(s: CommandState): string {
  return enumSpelling(CommandStateSchema, s);
}

/** What people read for a restore's state. */
export function stateLabel(s: CommandState): string {
  switch (s) {
    case CommandState.PENDING:
      return 'queued';
    case CommandState.LEASED:
      return 'running';
    case CommandState.SUCCEEDED:
      return 'succeeded';
    case CommandState.FAILED:
      return 'failed';
    default:
      return 'unknown';
  }
}

/** "planning", "transferring", "finishing"; "" when none was reported. */
export function phaseKey(p: CommandPhase | undefined): string {
  if (p === undefined || p === CommandPhase.UNSPECIFIED) return '';
  return enumSpelling(CommandPhaseSchema, p);
}

export interface RestoreProgressView {
  /** 0..100, or undefined while totals are unknown (planning, or no progress yet). */
  filesPct: number | undefined;
  bytesPct: number | undefined;
  filesText: string;
  bytesText: string;
  phase: string;
}

function pct(done: number, total: number): number | undefined {
  if (total <= 0) return undefined;
  return Math.min(100, Math.max(0, Math.floor((done / total) * 100)));
}

/**
 * The progress of a restore as bars show it. A succeeded restore is complete whatever its last
 * report said; its counts come from the result.
 */
export function progressView(info: CommandInfo): RestoreProgressView {
  const p = info.progress;
  const phase = phaseKey(p?.phase);
  const result = restoreResult(info);
  if (info.state === CommandState.SUCCEEDED) {
    const files = num(result?.files) + num(result?.unchanged);
    const bytes = num(result?.bytes);
    const totalFiles = Math.max(files, num(p?.filesTotal));
    const totalBytes = Math.max(bytes, num(p?.bytesTotal));
    return {
      filesPct: 100,
      bytesPct: 100,
      filesText: `${formatCount(files)} of ${formatCount(totalFiles)} files`,
      bytesText: `${formatBytes(bytes)} of ${formatBytes(totalBytes)}`,
      phase: 'done',
    };
  }
  if (!p) {
    return { filesPct: undefined, bytesPct: undefined, filesText: 'no progress yet', bytesText: '', phase };
  }
  const [fd, ft, bd, bt] = [num(p.filesDone), num(p.filesTotal), num(p.bytesDone), num(p.bytesTotal)];
  return {
    filesPct: pct(fd, ft),
    bytesPct: pct(bd, bt),
    filesText: ft > 0 ? `${formatCount(fd)} of ${formatCount(ft)} files` : plural(fd, 'file'),
    bytesText: bt > 0 ? `${formatBytes(bd)} of ${formatBytes(bt)}` : formatBytes(bd),
    phase,
  };
}

export function restoreArgs(info: CommandInfo): RestoreArgs | undefined {
  const a = info.command?.args?.kind;
  return a?.case === 'restore' ? a.value : undefined;
}

export function restoreResult(info: CommandInfo): RestoreResult | undefined {
  const d = info.resultDetails?.kind;
  return d?.case === 'restore' ? d.value : undefined;
}


/** "2 files (1.5 KiB), 1 directory, 0 links; 3 already there". */
export function resultSummary(r: RestoreResult): string {
  let s = `${plural(num(r.files), 'file')} (${formatBytes(r.bytes)}), ${plural(num(r.directories), 'directory', 'directories')}, ${plural(num(r.links), 'link')}`;
  if (num(r.unchanged) > 0) s += `; ${formatCount(r.unchanged)} already there`;
  return s;
}
