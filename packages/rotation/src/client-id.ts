/**
 * A device's OAuth client id is `iotdevice-<model code>-<key>`. The key is the last dash-separated
 * part and is always 8 characters of [a-z0-9]; the model code is everything between, so model
 * codes that contain dashes still parse.
 */
const CLIENT_ID = /^iotdevice-(.+)-([a-z0-9]{8})$/;

export function deviceClientId(modelCode: string, key: string): string {
  return `iotdevice-${modelCode}-${key}`;
}

export function parseDeviceClientId(clientId: string): { modelCode: string; key: string } | undefined {
  const m = CLIENT_ID.exec(clientId);
  if (!m) return undefined;
  return { modelCode: m[1]!, key: m[2]! };
}
