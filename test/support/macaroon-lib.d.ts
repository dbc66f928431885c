// Minimal typings for the js-macaroon reference library, used to prove wire compatibility.
declare module 'macaroon' {
  export interface JsMacaroon {
    identifier: Uint8Array;
    location: string;
    caveats: { identifier: Uint8Array }[];
    signature: Uint8Array;
    addFirstPartyCaveat(condition: string | Uint8Array): void;
    exportBinary(): Uint8Array;
    verify(rootKey: Uint8Array, check: (condition: string) => string | null, discharges?: JsMacaroon[]): void;
  }
  export function newMacaroon(args: {
    version?: number;
    rootKey: Uint8Array;
    identifier: Uint8Array;
    location: string;
  }): JsMacaroon;
  export function importMacaroon(bytes: Uint8Array): JsMacaroon;
}
