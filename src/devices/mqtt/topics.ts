/** MQTT topics of a device (PROTOCOL.md, "Transports"). */
export const topics = {
  request: (deviceId: string): string => `coulomb/d/${deviceId}/req`,
  response: (deviceId: string): string => `coulomb/d/${deviceId}/res`,
  event: (deviceId: string): string => `coulomb/d/${deviceId}/evt`,
  allRequests: 'coulomb/d/+/req',
  /**
   * Every device's requests through an MQTT 5 shared subscription: the broker delivers each
   * message to one subscriber of the group, so instances sharing a broker handle each request once.
   */
  sharedRequests: (group: string): string => `$share/${group}/coulomb/d/+/req`,
};

/** The shared subscription group of a deployment's instances when none is configured. */
export const DEFAULT_SHARE_GROUP = 'coulomb';

/** The device id in a topic `coulomb/d/<id>/<kind>`, if it is one. */
export function deviceOfTopic(topic: string): { deviceId: string; kind: string } | undefined {
  const m = /^coulomb\/d\/([0-9a-f]{64})\/(req|res|evt)$/.exec(topic);
  return m ? { deviceId: m[1]!, kind: m[2]! } : undefined;
}
