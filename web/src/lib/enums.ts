// Spellings and value lists of the contract's enums, read from the generated descriptors (src/gen,
// protoc-gen-es), so that no list of values and no snake_case name is typed by hand in the web code.
import type { DescEnum } from '@bufbuild/protobuf';
import type { GenEnum } from '@bufbuild/protobuf/codegenv2';

/** Either the generated `XxxSchema` of an enum or any other descriptor of one. */
type EnumDesc = DescEnum | GenEnum<number>;

/** "PACKAGE_TYPE_" for enum PackageType: the prefix proto style puts on each of its value names. */
function valuePrefix(e: EnumDesc): string {
  return `${e.name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}_`;
}

function spell(e: EnumDesc, protoName: string): string {
  const prefix = valuePrefix(e);
  return (protoName.startsWith(prefix) ? protoName.slice(prefix.length) : protoName).toLowerCase();
}

/**
 * The storage spelling of an enum value: its proto name without the type prefix, lowercased
 * (PACKAGE_TYPE_USER_DATA -> "user_data"). A number the enum does not declare (from a newer
 * server) keeps the prefix, so it cannot pass for a declared value: "package_type_9".
 */
export function enumSpelling(e: EnumDesc, value: number): string {
  const v = (e.value as Record<number, { name: string } | undefined>)[value];
  return v ? spell(e, v.name) : `${valuePrefix(e)}${value}`.toLowerCase();
}

/** The declared value spelled `spelling`, or undefined. */
export function enumFromSpelling<T extends number>(e: GenEnum<T>, spelling: string): T | undefined {
  const v = e.values.find((x) => spell(e, x.name) === spelling);
  return v === undefined ? undefined : (v.number as T);
}

/** Whether `value` is the enum's UNSPECIFIED value ("not set"). */
export function isUnspecified(e: EnumDesc, value: number): boolean {
  return enumSpelling(e, value) === 'unspecified';
}

/** The declared values in declaration order, without UNSPECIFIED. */
export function enumValues<T extends number>(e: GenEnum<T>): T[] {
  return e.values.filter((v) => spell(e, v.name) !== 'unspecified').map((v) => v.number as T);
}
