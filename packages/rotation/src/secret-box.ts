import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { Logger } from '@iotsupport/observability';

/**
 * Device client secrets at rest: AES-256-GCM with a key derived from SECRET_KEY by HKDF-SHA256.
 *
 * Stored form: `v1.<iv>.<tag>.<ciphertext>` (base64url parts). The device id is bound as
 * additional authenticated data, so a ciphertext copied onto another device's row fails to
 * decrypt instead of handing that device someone else's secret.
 */
const VERSION = 'v1';
const HKDF_SALT = Buffer.from('iotsupport-realtime/device-secrets');
const HKDF_INFO = Buffer.from('aes-256-gcm v1');
/** Used only when SECRET_KEY is unset outside production (config refuses to start production without it). */
const DEVELOPMENT_SECRET_KEY = 'iotsupport-development-only-secret-key';

export interface SecretBox {
  encrypt(plaintext: string, context: string): string;
  decrypt(stored: string, context: string): string;
}

export class SecretDecryptError extends Error {
  constructor(reason: string) {
    super(`stored secret cannot be decrypted: ${reason}`);
    this.name = 'SecretDecryptError';
  }
}

export interface SecretBoxOptions {
  secretKey: string | undefined;
  nodeEnv: string;
  logger: Logger;
}

export function createSecretBox(opts: SecretBoxOptions): SecretBox {
  let material = opts.secretKey;
  if (!material) {
    if (opts.nodeEnv === 'production') throw new Error('SECRET_KEY is required in production');
    opts.logger.warn(
      { nodeEnv: opts.nodeEnv },
      'SECRET_KEY is not set: device secrets are encrypted with the built-in DEVELOPMENT key, which is public. Set SECRET_KEY for any real deployment.',
    );
    material = DEVELOPMENT_SECRET_KEY;
  }
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(material, 'utf8'), HKDF_SALT, HKDF_INFO, 32));

  return {
    encrypt(plaintext, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [VERSION, iv.toString('base64url'), tag.toString('base64url'), ciphertext.toString('base64url')].join('.');
    },
    decrypt(stored, context) {
      const parts = stored.split('.');
      if (parts.length !== 4 || parts[0] !== VERSION) throw new SecretDecryptError('unknown format');
      const [, iv, tag, ciphertext] = parts as [string, string, string, string];
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
      } catch {
        throw new SecretDecryptError('wrong key, wrong device or tampered value');
      }
    },
  };
}

/** 256 bits of randomness, URL-safe (devices put it in form bodies and config files). */
export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** The additional authenticated data of a device's secrets. */
export function secretContext(deviceId: number): string {
  return `device:${deviceId}`;
}

/**
 * A device's stored secret in clear; undefined when it has none or it no longer decrypts (SECRET_KEY
 * changed): callers then treat the device as never provisioned.
 */
export function readableSecret(box: SecretBox, stored: string | null, deviceId: number): string | undefined {
  if (stored === null) return undefined;
  try {
    return box.decrypt(stored, secretContext(deviceId));
  } catch (err) {
    if (err instanceof SecretDecryptError) return undefined;
    throw err;
  }
}
