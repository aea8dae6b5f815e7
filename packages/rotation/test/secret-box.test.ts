import t from 'tap';
import { createLogger } from '@iotsupport/observability';
import { createSecretBox, generateClientSecret, secretContext, SecretDecryptError } from '../src/index.js';
import { silentLogger } from './helpers.js';

const box = createSecretBox({ secretKey: 'a-long-enough-test-secret-key', nodeEnv: 'test', logger: silentLogger });

t.test('a secret round-trips and is not stored in clear', async (t) => {
  const secret = generateClientSecret();
  const stored = box.encrypt(secret, secretContext(7));
  t.notMatch(stored, secret, 'ciphertext does not contain the secret');
  t.not(box.encrypt(secret, secretContext(7)), stored, 'a fresh IV each time');
  t.equal(box.decrypt(stored, secretContext(7)), secret);
});

t.test('a ciphertext moved to another device, tampered with, or read with another key is refused', async (t) => {
  const stored = box.encrypt('s3cret', secretContext(1));
  t.throws(() => box.decrypt(stored, secretContext(2)), SecretDecryptError);
  const parts = stored.split('.');
  const body = Buffer.from(parts[3]!, 'base64url');
  body[0] = body[0]! ^ 1;
  parts[3] = body.toString('base64url');
  t.throws(() => box.decrypt(parts.join('.'), secretContext(1)), SecretDecryptError);
  const other = createSecretBox({ secretKey: 'another-long-enough-secret-key', nodeEnv: 'test', logger: silentLogger });
  t.throws(() => other.decrypt(stored, secretContext(1)), SecretDecryptError);
  t.throws(() => box.decrypt('not-a-secret', secretContext(1)), SecretDecryptError);
});

t.test('without SECRET_KEY: refused in production, a loudly logged development key otherwise', async (t) => {
  t.throws(() => createSecretBox({ secretKey: undefined, nodeEnv: 'production', logger: silentLogger }), /SECRET_KEY/);
  const lines: string[] = [];
  const logger = createLogger({ level: 'warn', app: 'test', podId: 'p' });
  const warn = logger.warn.bind(logger);
  logger.warn = ((obj: unknown, msg?: string) => {
    lines.push(String(msg));
    return warn(obj as object, msg);
  }) as typeof logger.warn;
  const dev = createSecretBox({ secretKey: undefined, nodeEnv: 'development', logger });
  t.equal(dev.decrypt(dev.encrypt('x', 'c'), 'c'), 'x');
  t.match(lines.join('\n'), /DEVELOPMENT key/);
});

t.test('generated secrets are long and unique', async (t) => {
  const seen = new Set(Array.from({ length: 500 }, generateClientSecret));
  t.equal(seen.size, 500);
  t.ok([...seen].every((s) => /^[A-Za-z0-9_-]{43}$/.test(s)), 'each is base64url of 32 random bytes');
});
