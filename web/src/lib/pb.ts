// Re-exports of the generated contract (src/gen, produced by `buf generate` from ../proto) so the
// rest of the app imports wire types from one place.
export * from '../gen/edgebackup/v1/common_pb.js';
export * from '../gen/edgebackup/v1/status_pb.js';
export * from '../gen/edgebackup/v1/packages_pb.js';
export * from '../gen/edgebackup/v1/policy_pb.js';
export * from '../gen/edgebackup/v1/journal_pb.js';
export * from '../gen/edgebackup/v1/sources_pb.js';
export * from '../gen/edgebackup/v1/commands_pb.js';
export * from '../gen/edgebackup/v1/catalog_pb.js';
export * from '../gen/edgebackup/v1/alerts_pb.js';
export { Role, RoleSchema } from '../gen/edgebackup/v1/access_pb.js';
export {
  RulesChangedSchema,
  SafetyTrigger,
  SafetyTriggerSchema,
  type RulesChanged,
} from '../gen/edgebackup/v1/agent_pb.js';

/** The plain fields of a message, all optional: for partial request objects. */
export type Fields<T> = Omit<Partial<T>, '$typeName' | '$unknown'>;
