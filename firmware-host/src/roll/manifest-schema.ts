// The roll manifest: the pharmacy's description of one roll of dose pouches, as a TypeBox schema and a JSON Schema document.
//
// | field                      | type / form                 | meaning                                                       |
// |----------------------------|-----------------------------|---------------------------------------------------------------|
// | format                     | "dosis-roll/1"              | format and version of this file                               |
// | rollId                     | ^[A-Z0-9]{1,16}$            | printed on every pouch label as `<rollId>-<position, 3 digits>` |
// | citizenId                  | ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ | the citizen's pseudonymous id on the robot               |
// | printedLabel.name          | text, 1–200                 | name printed on the pouches; never logged                     |
// | printedLabel.birthDate     | YYYY-MM-DD                  | birth date printed on the pouches; never logged               |
// | timeZone                   | IANA zone, optional         | zone of every local date and time; default Europe/Copenhagen  |
// | period.from, period.to     | YYYY-MM-DD                  | first and last local intake date the roll covers              |
// | timing                     | DoseTiming fields, optional | roll-wide overrides of the dose windows (minutes)             |
// | pouches[].position         | 1–999                       | 1-based place on the roll; pouch n sits in carousel slot n−1  |
// | pouches[].intakeDate       | YYYY-MM-DD                  | local intake date                                             |
// | pouches[].intakeTime       | HH:MM, 00:00–23:59          | local intake time (see the DST rule in README.md)             |
// | pouches[].timing           | DoseTiming fields, optional | overrides for this dose, over the roll's                      |
// | pouches[].useBy            | YYYY-MM-DD, optional        | last local date the pouch may be taken                        |
// | pouches[].instructions     | { da?, en? }, optional      | how to take the dose ("tages med mad"), shown with it          |
// | pouches[].drugs[]          | { name, strength, count }   | what the pouch holds; count 1–99 pills of that drug           |
// | pouches[].pillCount        | integer ≥ 0                 | pills in the pouch; must equal the sum of the drug counts     |

import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';

export const MANIFEST_FORMAT = 'dosis-roll/1';
export const DEFAULT_TIME_ZONE = 'Europe/Copenhagen';
/** Positions run to 999 because the pouch label carries three digits. */
export const MAX_POSITION = 999;

const LocalDate = (description: string) => Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', description });

export const TimingOverridesSchema = Type.Object(
  {
    earlyMin: Type.Optional(Type.Integer({ minimum: 0, maximum: 720, description: 'minutes before the intake time the dose may be taken' })),
    reminderEveryMin: Type.Optional(Type.Integer({ minimum: 1, maximum: 120, description: 'minutes between reminders once due' })),
    overdueAfterMin: Type.Optional(Type.Integer({ minimum: 0, maximum: 1440, description: 'minutes after due before the alarm centre is told' })),
    closeAfterMin: Type.Optional(Type.Integer({ minimum: 1, maximum: 1440, description: 'minutes after due before the dose is missed' })),
  },
  { additionalProperties: false, description: 'overrides of the dose timing windows (DoseTiming), in minutes' },
);

export const DrugSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, description: 'drug name as printed' }),
    strength: Type.String({ minLength: 1, maxLength: 50, description: 'strength as printed, e.g. "500 mg"' }),
    count: Type.Integer({ minimum: 1, maximum: 99, description: 'pills of this drug in the pouch' }),
  },
  { additionalProperties: false },
);

export const PouchSchema = Type.Object(
  {
    position: Type.Integer({ minimum: 1, maximum: MAX_POSITION, description: '1-based position on the roll' }),
    intakeDate: LocalDate('a local date YYYY-MM-DD'),
    intakeTime: Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'a local time HH:MM from 00:00 to 23:59' }),
    timing: Type.Optional(TimingOverridesSchema),
    useBy: Type.Optional(LocalDate('the last local date the pouch may be taken, YYYY-MM-DD')),
    instructions: Type.Optional(
      Type.Object(
        {
          da: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'in Danish, e.g. "tages med mad"' })),
          en: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'in English, e.g. "take with food"' })),
        },
        { additionalProperties: false, minProperties: 1, description: 'how to take the dose, shown with it on the screen' },
      ),
    ),
    drugs: Type.Array(DrugSchema, { maxItems: 50 }),
    pillCount: Type.Integer({ minimum: 0, description: 'pills in the pouch, the sum of the drug counts' }),
  },
  { additionalProperties: false },
);

export const RollManifestSchema = Type.Object(
  {
    format: Type.Literal(MANIFEST_FORMAT),
    rollId: Type.String({ pattern: '^[A-Z0-9]{1,16}$', description: '1 to 16 capital letters or digits' }),
    citizenId: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$', description: "the citizen's pseudonymous id: letters, digits, _ and -, at most 64" }),
    printedLabel: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: 200, description: 'name printed on the pouches' }),
        birthDate: LocalDate('a date YYYY-MM-DD'),
      },
      { additionalProperties: false, description: 'what the pouch labels print about the citizen; never logged' },
    ),
    timeZone: Type.Optional(Type.String({ minLength: 1, maxLength: 64, default: DEFAULT_TIME_ZONE, description: 'IANA time zone of the local dates and times' })),
    period: Type.Object(
      { from: LocalDate('a local date YYYY-MM-DD'), to: LocalDate('a local date YYYY-MM-DD') },
      { additionalProperties: false, description: 'first and last local intake date of the roll' },
    ),
    timing: Type.Optional(TimingOverridesSchema),
    pouches: Type.Array(PouchSchema, { minItems: 1 }),
  },
  { additionalProperties: false },
);

export type TimingOverrides = Static<typeof TimingOverridesSchema>;
export type ManifestDrug = Static<typeof DrugSchema>;
export type ManifestPouch = Static<typeof PouchSchema>;
export type RollManifest = Static<typeof RollManifestSchema>;

export const checkManifest = TypeCompiler.Compile(RollManifestSchema);

/** The manifest format as a plain JSON Schema (draft 2020-12) document, for the pharmacy's packing system. */
export const MANIFEST_JSON_SCHEMA: Record<string, unknown> = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://dosis.invalid/schemas/roll-manifest-1.json',
  title: 'dosis roll manifest',
  description: 'One roll of dose pouches for one citizen. Rules beyond the schema (pill sums, order, DST) are in firmware-host/src/roll/README.md.',
  // TypeBox schemas are JSON Schema already; the round trip drops its Symbol-keyed bookkeeping.
  ...(JSON.parse(JSON.stringify(RollManifestSchema)) as Record<string, unknown>),
};
