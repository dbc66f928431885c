/** A device registered with the gateway: its key is its identity, its account holds its money. */
export interface Device {
  /** BIP340 x-only public key, 64 lowercase hex. */
  deviceId: string;
  accountId: string;
  name: string;
  state: 'active' | 'revoked';
  /** The highest request counter accepted (stored before the request's operation runs). */
  lastCounter: number;
  /** Sequence number of the last event pushed to the device. */
  lastEventSeq: number;
  createdAt: number;
  revokedAt?: number;
  /**
   * When the device was last heard from (a request, an MQTT connection), as stored: written with
   * every accepted request counter, and otherwise at most once a minute (DeviceRegistry.seen).
   */
  lastSeenAt?: number;
}

/** A device as the operator's list shows it: its record and what the gateway knows of it now. */
export interface DeviceStatus extends Device {
  /** Connected to the embedded MQTT broker now. */
  online: boolean;
  /** Requests accepted from it since the gateway started. */
  requestsSinceStart: number;
}

/** A one-time code that lets a device enroll its own key for an account. */
export interface Enrollment {
  /** SHA-256 of the code (the code itself is shown once and never stored). */
  codeHash: string;
  accountId: string;
  name: string;
  expiresAt: number;
  usedBy?: string;
}
