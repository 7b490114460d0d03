// The ACL token rule of src/core/acl.ts: where a request carries its token, and a comparison that a wrong token
// of the right length does not pass.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { aclAllows, requestToken, tokenMatches } from '../../src/core/acl.js';

const q = (s = ''): URLSearchParams => new URLSearchParams(s);

describe('requestToken', () => {
  it('reads ?token=, X-Consul-Token and Authorization: Bearer', () => {
    assert.equal(requestToken({}, q('token=abc')), 'abc');
    assert.equal(requestToken({ 'x-consul-token': 'abc' }, q()), 'abc');
    assert.equal(requestToken({ authorization: 'Bearer abc' }, q()), 'abc');
    assert.equal(requestToken({ authorization: 'Bearer   abc  trailing' }, q()), 'abc', 'the first word after the scheme');
  });

  it('prefers them in Consul\'s order: query, then X-Consul-Token, then Authorization', () => {
    assert.equal(requestToken({ 'x-consul-token': 'h', authorization: 'Bearer b' }, q('token=t')), 't');
    assert.equal(requestToken({ 'x-consul-token': 'h', authorization: 'Bearer b' }, q()), 'h');
    assert.equal(requestToken({ 'x-consul-token': '', authorization: 'Bearer b' }, q('token=')), 'b', 'empty values do not count');
  });

  it('finds none without one, or with another Authorization scheme', () => {
    assert.equal(requestToken({}, q()), undefined);
    assert.equal(requestToken({ authorization: 'Basic YTpi' }, q()), undefined);
    assert.equal(requestToken({ authorization: 'Bearer' }, q()), undefined);
  });
});

describe('tokenMatches', () => {
  it('accepts the token and refuses anything else, whatever its length', () => {
    assert.equal(tokenMatches('s3cret', 's3cret'), true);
    assert.equal(tokenMatches('s3creT', 's3cret'), false, 'a wrong token of the same length');
    assert.equal(tokenMatches('s3cre', 's3cret'), false, 'a prefix');
    assert.equal(tokenMatches('s3cret!', 's3cret'), false, 'a longer one');
    assert.equal(tokenMatches('', 's3cret'), false);
    assert.equal(tokenMatches(undefined, 's3cret'), false);
    assert.equal(tokenMatches('ünïcødé', 'ünïcødé'), true);
  });
});

describe('aclAllows', () => {
  it('lets everything through without a configured token', () => {
    assert.equal(aclAllows(undefined, {}, q()), true);
  });

  it('with one, needs it in any of the three places', () => {
    assert.equal(aclAllows('s3cret', {}, q()), false);
    assert.equal(aclAllows('s3cret', {}, q('token=s3cret')), true);
    assert.equal(aclAllows('s3cret', { 'x-consul-token': 's3cret' }, q()), true);
    assert.equal(aclAllows('s3cret', { authorization: 'Bearer s3cret' }, q()), true);
    for (const [headers, query] of [[{}, 'token=s3creX'], [{ 'x-consul-token': 's3creX' }, ''], [{ authorization: 'Bearer s3creX' }, '']] as const) {
      assert.equal(aclAllows('s3cret', headers, q(query)), false, `a wrong token of equal length (${JSON.stringify(headers)} ${query})`);
    }
  });
});
