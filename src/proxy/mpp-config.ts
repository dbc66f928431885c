import { Type, type Static } from '@sinclair/typebox';

/** A service's MPP (`Payment` scheme) settings (docs/MPP.md). */
export const MppServiceSchema = Type.Object(
  {
    /**
     * The intents offered: `charge` (one paid request per credential; per-request services only)
     * and `session` (a deposit many requests draw on, the unused part refunded at close).
     */
    intents: Type.Optional(
      Type.Array(Type.Union([Type.Literal('charge'), Type.Literal('session')]), {
        minItems: 1,
        uniqueItems: true,
      }),
    ),
    /** A session's deposit in units of its price (per-request services; default 20). */
    depositMultiplier: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    /** Advertised idle timeout of a session, in seconds (default 300). */
    idleTimeoutSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
export type MppServiceConfig = Static<typeof MppServiceSchema>;
