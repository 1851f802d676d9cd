// The live store: the fleet state behind Svelte runes. Watch events are applied to the plain
// FleetState at once and announced to views at most once per animation frame, so a burst of
// progress ticks costs one render.
import type { Api } from './client';
import {
  applyWatchEvent,
  emptyFleet,
  mergeChanges,
  mergePackages,
  noChange,
  type FleetChange,
  type FleetState,
} from './fleet';
import { timestampToMs } from './format';
import type { Alert, CommandInfo, Package, PendingChange, WatchEvent } from './pb';
import { applyAlertEvent, upsertAlert, type AlertBook } from './alerts';
import { applyPendingEvent, emptyPending, upsertPending, type PendingBook } from './pending';
import { applyRestoreEvent, upsertRestore, type RestoreBook } from './restores';
import { startWatcher, type ConnectionInfo, type Watcher } from './watch';

export type PackagesListener = (change: FleetChange) => void;

/** Newest packages and journal events asked for in every snapshot. */
export const SNAPSHOT_PACKAGE_LIMIT = 2000;
export const SNAPSHOT_JOURNAL_LIMIT = 200;

export class LiveStore {
  /** The state itself; read it inside a $derived that also reads the matching version below. */
  readonly fleet: FleetState = emptyFleet();
  /** Open and recent restores by command id (snapshot.restores, restore_changed); read with restoresV. */
  readonly restores: RestoreBook = new Map();
  /** Open pending changes (snapshot.pending_changes, pending_change); read with pendingV. */
  readonly pending: PendingBook = emptyPending();
  /** Open and recently resolved alerts by id (snapshot.alerts, alert_changed); read with alertsV. */
  readonly alerts: AlertBook = new Map();

  connection = $state<ConnectionInfo>({ state: 'connecting', failures: 0 });
  /** Snapshots applied; 0 while the first is awaited. */
  generation = $state(0);
  statusV = $state(0);
  sourcesV = $state(0);
  rulesV = $state(0);
  journalV = $state(0);
  stationsV = $state(0);
  packagesV = $state(0);
  restoresV = $state(0);
  pendingV = $state(0);
  alertsV = $state(0);
  /** Server clock minus local clock, ms (from status.now). */
  serverOffsetMs = $state(0);
  /** When the last event arrived (epoch ms). */
  lastEventAt = $state<number | undefined>(undefined);

  #pending: FleetChange = noChange();
  #restoresChanged = false;
  #pendingChanged = false;
  #alertsChanged = false;
  #scheduled = false;
  #listeners = new Set<PackagesListener>();
  #watcher: Watcher | undefined;

  /** Starts the one Watch subscription. */
  start(api: Api): void {
    this.#watcher?.stop();
    this.#watcher = startWatcher({
      watch: (signal) =>
        api.status.watch({ packageLimit: SNAPSHOT_PACKAGE_LIMIT, journalLimit: SNAPSHOT_JOURNAL_LIMIT }, { signal }),
      onEvent: (ev) => this.apply(ev),
      onConnection: (info) => (this.connection = info),
      isOnline: () => (typeof navigator === 'undefined' ? true : navigator.onLine),
    });
    if (typeof window !== 'undefined') {
      window.addEventListener('online', this.retryNow);
    }
  }

  stop(): void {
    this.#watcher?.stop();
    this.#watcher = undefined;
    if (typeof window !== 'undefined') window.removeEventListener('online', this.retryNow);
  }

  retryNow = (): void => {
    this.#watcher?.retryNow();
  };

  /** Applies one Watch event (exposed for tests and the stream). */
  apply(ev: WatchEvent): void {
    const change = applyWatchEvent(this.fleet, ev);
    if (applyRestoreEvent(this.restores, ev)) this.#restoresChanged = true;
    if (applyPendingEvent(this.pending, ev)) this.#pendingChanged = true;
    if (applyAlertEvent(this.alerts, ev)) this.#alertsChanged = true;
    this.lastEventAt = Date.now();
    this.#queue(change);
  }

  /** Adds a restore a unary call returned (CreateCommand) unless the stream already told of it. */
  mergeRestore(info: CommandInfo): void {
    if (upsertRestore(this.restores, info, false)) {
      this.#restoresChanged = true;
      this.#queue(noChange());
    }
  }

  /**
   * Adds pending changes a unary call returned (UpdateRuleSet, ApplyPreset, RestoreConfigSnapshot,
   * DeletePackage, CancelPendingChange) unless the stream already told more.
   */
  mergePending(changes: PendingChange[]): void {
    let moved = false;
    for (const c of changes) if (upsertPending(this.pending, c, false)) moved = true;
    if (moved) {
      this.#pendingChanged = true;
      this.#queue(noChange());
    }
  }

  /**
   * Merges alerts a unary call returned (AcknowledgeAlert, ListAlerts) without undoing what the
   * stream told since (a resolution, an acknowledgement).
   */
  mergeAlerts(alerts: Alert[]): void {
    let moved = false;
    for (const a of alerts) if (upsertAlert(this.alerts, a, false)) moved = true;
    if (moved) {
      this.#alertsChanged = true;
      this.#queue(noChange());
    }
  }

  /** Merges packages loaded by a unary call (pages, details). */
  merge(pkgs: Package[]): void {
    this.#queue(mergePackages(this.fleet, pkgs));
  }

  /** Called with the coalesced change of every flush that touched packages or resynced. */
  onPackages(listener: PackagesListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #queue(change: FleetChange): void {
    this.#pending = mergeChanges(this.#pending, change);
    if (this.#scheduled) return;
    this.#scheduled = true;
    scheduleFrame(() => this.flush());
  }

  /** Publishes pending changes now. */
  flush(): void {
    this.#scheduled = false;
    const c = this.#pending;
    this.#pending = noChange();
    if (c.resync) this.generation = this.fleet.generation;
    if (c.status) {
      this.statusV++;
      const serverNow = timestampToMs(this.fleet.status?.now);
      if (serverNow) this.serverOffsetMs = serverNow - Date.now();
    }
    if (c.sources) this.sourcesV++;
    if (c.rules) this.rulesV++;
    if (c.journal) this.journalV++;
    if (c.stations) this.stationsV++;
    if (this.#restoresChanged) {
      this.#restoresChanged = false;
      this.restoresV++;
    }
    if (this.#pendingChanged) {
      this.#pendingChanged = false;
      this.pendingV++;
    }
    if (this.#alertsChanged) {
      this.#alertsChanged = false;
      this.alertsV++;
    }
    if (c.resync || c.packages.length > 0) {
      this.packagesV++;
      for (const l of this.#listeners) l(c);
    }
  }
}

/** Next animation frame, or a short timeout when frames do not run (hidden tab, tests). */
function scheduleFrame(fn: () => void): void {
  let ran = false;
  const once = () => {
    if (ran) return;
    ran = true;
    fn();
  };
  if (typeof requestAnimationFrame === 'function') requestAnimationFrame(once);
  setTimeout(once, 100);
}

export const live = new LiveStore();
