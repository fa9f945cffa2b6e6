// Tokens go on command lines (`kaboot deploy --token T`) and kernel lines: never an option-like "-" first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newToken } from '../../src/util/token.js';
import { newDeploymentToken } from '../../src/deploy/deployment.js';

test('tokens are 48 hex digits: 192 random bits, nothing a parser or a shell reads as an option or a quote', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    for (const t of [newToken(), newDeploymentToken()]) {
      assert.match(t, /^[0-9a-f]{48}$/);
      seen.add(t);
    }
  }
  assert.equal(seen.size, 4000);
});
