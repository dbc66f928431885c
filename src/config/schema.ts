import { Type, type Static } from '@sinclair/typebox';

const MsatText = Type.String({ pattern: '^(0|[1-9][0-9]*)$' });

export const LndConfigSchema = Type.Object(
  {
    socket: Type.String({ pattern: '^[^:\\s]+:\\d{1,5}$', description: 'host:port of LND gRPC' }),
    cert: Type.String({ minLength: 1, description: 'TLS cert file path or base64/PEM contents' }),
    macaroon: Type.String({ minLength: 1, description: 'macaroon file path or hex/base64 contents' }),
  },
  { additionalProperties: false },
);

export const PolarConfigSchema = Type.Object(
  {
    network: Type.String({ minLength: 1, description: 'Polar network name or numeric id' }),
    node: Type.String({ minLength: 1, description: 'LND node name in that network' }),
    dataDir: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Polar data root (default ~/.local/share/polar or ~/.polar)',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    http: Type.Object(
      {
        host: Type.String({ minLength: 1 }),
        port: Type.Integer({ minimum: 0, maximum: 65535, description: '0 picks a free port' }),
      },
      { additionalProperties: false },
    ),
    dataDir: Type.String({ minLength: 1, description: "the gateway's own storage" }),
    /** PostgreSQL store for several instances (issue 13); absent: the embedded LevelDB store. */
    databaseUrl: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^postgres(ql)?://',
        description: 'postgres://user@host:port/db',
      }),
    ),
    /**
     * With a database URL: where the other instances reach this one's HTTP API (they forward the
     * leader-owned routes to the leader's). Default: the address the API listens on.
     */
    advertiseUrl: Type.Optional(
      Type.String({ minLength: 1, pattern: '^https?://', description: 'http://10.0.0.5:8080' }),
    ),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    ),
    lnd: Type.Optional(LndConfigSchema),
    polar: Type.Optional(PolarConfigSchema),
    regtest: Type.Object(
      {
        dataDir: Type.String({ minLength: 1 }),
        basePort: Type.Integer({ minimum: 1024, maximum: 65000 }),
        node: Type.Union([Type.Literal('alice'), Type.Literal('bob'), Type.Literal('carol')]),
      },
      { additionalProperties: false },
    ),
    /** Trust-tier amounts in msat (decimal strings); defaults: L1 100k sat/day, L2 10M sat/day. */
    tiers: Type.Optional(
      Type.Object(
        {
          L1: Type.Optional(
            Type.Object({ dailyMsat: MsatText, perPaymentMsat: MsatText }, { additionalProperties: false }),
          ),
          L2: Type.Optional(
            Type.Object({ dailyMsat: MsatText, perPaymentMsat: MsatText }, { additionalProperties: false }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    /** The L402 reverse proxy: its own listener, services from a YAML/JSON file, or the sample. */
    proxy: Type.Object(
      {
        enabled: Type.Boolean(),
        host: Type.String({ minLength: 1 }),
        port: Type.Integer({ minimum: 0, maximum: 65535 }),
        /** Services file; without one, a SAMPLE service in front of a sample upstream is served. */
        configFile: Type.Optional(Type.String({ minLength: 1 })),
        samplePort: Type.Integer({ minimum: 0, maximum: 65535 }),
      },
      { additionalProperties: false },
    ),
    /** Devices over MQTT: the embedded broker on host:port, or an external broker by URL. */
    mqtt: Type.Object(
      {
        enabled: Type.Boolean(),
        host: Type.String({ minLength: 1 }),
        port: Type.Integer({ minimum: 0, maximum: 65535 }),
        /** e.g. mqtt://broker.local:1883 — then no embedded broker is started. */
        url: Type.Optional(Type.String({ pattern: '^mqtts?://' })),
        username: Type.Optional(Type.String()),
        password: Type.Optional(Type.String()),
        /**
         * With an external broker, the gateway takes device requests through the MQTT 5 shared
         * subscription `$share/<shareGroup>/coulomb/d/+/req`: the broker hands each request to one
         * instance of the group. Every instance of one deployment uses the same group (default
         * `coulomb`). Not used with the embedded broker (one instance).
         */
        shareGroup: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' })),
      },
      { additionalProperties: false },
    ),
    /**
     * Calls the gateway makes to URLs its users choose (escrow verifiers) reach public addresses
     * only; `allow` lists the exceptions: host names (exact) and IP addresses or CIDR blocks.
     */
    outbound: Type.Optional(
      Type.Object(
        { allow: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { maxItems: 256 }) },
        { additionalProperties: false },
      ),
    ),
    /** The energy market (src/energy): delivery slots, meter tolerance, prepaid chunk, caps. */
    energy: Type.Optional(
      Type.Object(
        {
          slotSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
          toleranceBps: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
          prefundWh: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000 })),
          maxOpenOrdersPerAccount: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
          maxPendingReadings: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
          graceSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 * 86_400 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** Task auctions (src/market/auctions.ts): the most one account may have open at once. */
    auctions: Type.Optional(
      Type.Object(
        { maxOpenPerAccount: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })) },
        { additionalProperties: false },
      ),
    ),
    /** Operator credential; when absent one is generated on first start and only its hash is kept. */
    operatorKey: Type.Optional(Type.String({ minLength: 32 })),
    /** Prometheus metrics at `/metrics`: the operator key opens it, and this token too (scrape only). */
    metrics: Type.Optional(
      Type.Object(
        { scrapeToken: Type.Optional(Type.String({ minLength: 32 })) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type LndConfig = Static<typeof LndConfigSchema>;
export type PolarConfig = Static<typeof PolarConfigSchema>;
