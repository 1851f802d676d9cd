// Builders of wire messages for unit tests.
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  CatcherReplicaSchema,
  FleetSnapshotSchema,
  GetStatusResponseSchema,
  JournalEventSchema,
  PackageSchema,
  PackageStatus,
  PackageType,
  SourceSchema,
  Tier,
  WatchEventSchema,
  type CatcherReplica,
  type FleetSnapshot,
  type JournalEvent,
  type Package,
  type WatchEvent,
} from './pb';
type Init<T> = Omit<Partial<T>, '$typeName' | '$unknown'>;

export function pkg(id: string, init: Init<Package> & { updatedMs?: number; createdMs?: number } = {}): Package {
  const { updatedMs, createdMs, ...rest } = init;
  return create(PackageSchema, {
    packageId: id,
    sourceId: 'src-a',
    path: `data/${id}.bin`,
    packageType: PackageType.USER_DATA,
    status: PackageStatus.PENDING,
    tier: Tier.UNSPECIFIED,
    sizeBytes: 100n,
    updatedAt: updatedMs !== undefined ? timestampFromMs(updatedMs) : undefined,
    createdAt: createdMs !== undefined ? timestampFromMs(createdMs) : undefined,
    ...rest,
  });
}

export function journalEvent(seq: number, init: Init<JournalEvent> = {}): JournalEvent {
  return create(JournalEventSchema, { sequence: BigInt(seq), actor: 'api', eventType: 'package.ingested', ...init });
}

export function snapshotEvent(init: Init<FleetSnapshot> = {}): WatchEvent {
  const snap: FleetSnapshot = create(FleetSnapshotSchema, {
    status: create(GetStatusResponseSchema, { clientsConnected: 1n, clientsTotal: 2n }),
    sources: [create(SourceSchema, { sourceId: 'src-a', connected: true })],
    ...init,
  });
  return create(WatchEventSchema, { kind: { case: 'snapshot', value: snap } });
}

export function event(kind: WatchEvent['kind']): WatchEvent {
  return create(WatchEventSchema, { kind });
}

/** A catcher replica started at `startedMs` (default 0) whose last heartbeat was at `heartbeatMs`. */
export function replica(
  id: string,
  init: Init<CatcherReplica> & { startedMs?: number; heartbeatMs?: number } = {},
): CatcherReplica {
  const { startedMs = 0, heartbeatMs, ...rest } = init;
  return create(CatcherReplicaSchema, {
    replicaId: id,
    address: '10.0.0.1:50051',
    startedAt: timestampFromMs(startedMs),
    heartbeatAt: heartbeatMs !== undefined ? timestampFromMs(heartbeatMs) : undefined,
    ...rest,
  });
}
