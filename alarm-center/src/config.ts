// Alarm centre settings with their defaults; every duration in milliseconds.
export type AlarmConfig = {
  /** Unclaimed alerts are notified again this often. */
  renotifyMs: number;
  /** Unclaimed alerts go to a supervisor after this long. */
  escalateAfterMs: number;
  /** Claimed but unresolved alerts remind the claiming operator this often. */
  remindMs: number;
  /** Heartbeat interval the centre tells devices to use. */
  heartbeatIntervalMs: number;
  /** How often the scheduler looks at the database. */
  schedulerTickMs: number;
  signatureWindowMs: number;
  sessionTtlMs: number;
  bodyLimitBytes: number;
  /** Requests per minute per address, and per device for signed requests; 0 turns both limits off (benchmarks only). */
  rateLimitPerMinute: number;
  /** 32-byte key (hex) that encrypts device secrets at rest; see README. */
  secretKeyHex?: string | undefined;
};

export const DEFAULT_CONFIG: AlarmConfig = {
  renotifyMs: 60_000,
  escalateAfterMs: 180_000,
  remindMs: 300_000,
  heartbeatIntervalMs: 300_000,
  schedulerTickMs: 1_000,
  signatureWindowMs: 5 * 60_000,
  sessionTtlMs: 12 * 3600_000,
  bodyLimitBytes: 64 * 1024,
  rateLimitPerMinute: 1200,
};
