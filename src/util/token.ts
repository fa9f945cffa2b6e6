// Bearer tokens (the API's, each deployment's): 24 random bytes as hex. Not base64url:
// one token in 64 would begin with "-", and `kaboot … --token <it>` would read it as an
// option; hex also passes unquoted through a kernel command line and a shell.
import { randomBytes } from 'node:crypto';

export function newToken(): string {
  return randomBytes(24).toString('hex');
}
