// Real Node.js clients against sealcached's Redis-protocol front: node-redis 4.7 (RESP2,
// FT.* through its search module, whose FT.INFO parser reads replies by position),
// node-redis 6 and ioredis 6 (both opening with HELLO 3, so RESP3), and @langchain/redis's
// RedisVectorStore storing and searching documents end to end.
//
// Run by tests/resp/resp_front_test.py (class NodeClients) with SEALCACHE_RESP_PORT,
// SEALCACHE_ORG and SEALCACHE_TOKEN set; exits non-zero on the first failed assertion.
import assert from 'node:assert/strict';

import { Document } from '@langchain/core/documents';
import { Embeddings } from '@langchain/core/embeddings';
import { RedisVectorStore } from '@langchain/redis';
import Redis from 'ioredis';
import { createClient } from 'redis';
import { createClient as createClient4 } from 'redis4';

const port = Number(process.env.SEALCACHE_RESP_PORT);
const org = process.env.SEALCACHE_ORG;
const token = process.env.SEALCACHE_TOKEN;
const url = `redis://${org}:${token}@127.0.0.1:${port}`;
const DIM = 8;

// One direction per known word, so that similarity is predictable.
const WORDS = ['cats', 'purr', 'dogs', 'bark', 'fish', 'swim', 'birds', 'sing'];
class WordEmbeddings extends Embeddings {
  constructor() { super({}); }
  embed(text) {
    const v = new Array(DIM).fill(0.01);
    for (const w of text.toLowerCase().split(/\W+/)) {
      const i = WORDS.indexOf(w);
      if (i >= 0) v[i] += 1;
    }
    return v;
  }
  async embedDocuments(texts) { return texts.map((t) => this.embed(t)); }
  async embedQuery(text) { return this.embed(text); }
}

function f32(values) { return Buffer.from(new Float32Array(values).buffer); }
function unit(i) { const v = new Array(DIM).fill(0); v[i] = 1; return v; }

async function nodeRedis4() {
  const c = createClient4({ url });
  await c.connect();
  assert.equal(await c.set('n4:s', 'v', { EX: 100 }), 'OK');
  assert.equal(await c.get('n4:s'), 'v');
  assert.ok((await c.ttl('n4:s')) > 90);
  assert.equal(await c.hSet('n4:h', { a: '1', b: '2' }), 2);
  assert.deepEqual({ ...(await c.hGetAll('n4:h')) }, { a: '1', b: '2' });
  const [set, get] = await c.multi().set('n4:m', 'x').get('n4:m').exec();
  assert.deepEqual([set, get], ['OK', 'x']);
  await c.ft.create('n4idx', {
    v: { type: 'VECTOR', ALGORITHM: 'HNSW', TYPE: 'FLOAT32', DIM, DISTANCE_METRIC: 'COSINE' },
    tag: { type: 'TAG' },
  }, { ON: 'HASH', PREFIX: 'n4doc:' });
  for (let i = 0; i < 4; i++) await c.hSet(`n4doc:${i}`, { v: f32(unit(i)), tag: i % 2 ? 'odd' : 'even' });
  const info = await c.ft.info('n4idx');  // positional parser: crashes on a short reply
  assert.equal(info.indexName, 'n4idx');
  assert.equal(Number(info.numDocs), 4);
  const res = await c.ft.search('n4idx', '(@tag:{odd})=>[KNN 2 @v $q AS score]', {
    PARAMS: { q: f32(unit(3)) }, RETURN: ['tag', 'score'], SORTBY: 'score', DIALECT: 2,
  });
  assert.equal(res.total, 2);
  assert.equal(res.documents[0].id, 'n4doc:3');
  assert.equal(res.documents[0].value.tag, 'odd');
  assert.ok(Number(res.documents[0].value.score) < 1e-5);
  assert.deepEqual(await c.ft._list(), ['n4idx']);
  assert.equal(await c.ft.dropIndex('n4idx', { DD: true }), 'OK');
  assert.equal(await c.exists('n4doc:1'), 0);
  await c.quit();
}

async function nodeRedisCurrent() {
  const c = createClient({ url, RESP: 3 });
  await c.connect();
  assert.equal(await c.set('n6:s', 'v6', { expiration: { type: 'EX', value: 100 } }), 'OK');
  assert.equal(await c.get('n6:s'), 'v6');
  assert.equal(await c.hSet('n6:h', { a: '1' }), 1);
  const all = await c.hGetAll('n6:h');  // a RESP3 map
  assert.equal(all.a, '1');
  assert.equal(await c.get('n6:none'), null);  // RESP3 null
  const hello = await c.sendCommand(['HELLO', '3']);
  assert.equal(hello.proto ?? hello.get?.('proto'), 3);
  const keys = await c.keys('n6:*');
  assert.deepEqual(keys.sort(), ['n6:h', 'n6:s']);
  await c.quit();
}

async function ioredis() {
  const c = new Redis(url, { protocol: 3 });  // ioredis 6: HELLO 3
  assert.equal(await c.set('io:s', 'vio', 'EX', 100), 'OK');
  assert.equal(await c.get('io:s'), 'vio');
  assert.equal(await c.hset('io:h', 'a', '1', 'b', '2'), 2);
  assert.deepEqual(await c.hgetall('io:h'), { a: '1', b: '2' });
  const p = await c.pipeline().set('io:p', '1').get('io:p').exec();
  assert.deepEqual(p, [[null, 'OK'], [null, '1']]);
  const [cursor, found] = await c.scan('0', 'MATCH', 'io:*', 'COUNT', '100');
  assert.equal(cursor, '0');
  assert.deepEqual(found.sort(), ['io:h', 'io:p', 'io:s']);
  await c.call('FT.CREATE', 'ioidx', 'ON', 'HASH', 'PREFIX', '1', 'iodoc:', 'SCHEMA', 'v',
               'VECTOR', 'FLAT', '6', 'TYPE', 'FLOAT32', 'DIM', String(DIM), 'DISTANCE_METRIC',
               'COSINE');
  await c.hset('iodoc:1', 'v', f32(unit(5)), 'name', 'five');
  const reply = await c.call('ft.search', 'ioidx', '*=>[KNN 1 @v $q AS d]', 'return', '1',
                             'name', 'params', '2', 'q', f32(unit(5)), 'dialect', '2');
  assert.ok(JSON.stringify(reply).includes('five'), JSON.stringify(reply));
  await c.quit();
}

async function langchainVectorStore() {
  const client = createClient4({ url });
  await client.connect();
  const store = new RedisVectorStore(new WordEmbeddings(), { redisClient: client, indexName: 'lcdocs' });
  await store.addDocuments([
    new Document({ pageContent: 'cats purr', metadata: { kind: 'pet' } }),
    new Document({ pageContent: 'dogs bark', metadata: { kind: 'pet' } }),
    new Document({ pageContent: 'fish swim', metadata: { kind: 'water' } }),
  ]);
  const hits = await store.similaritySearchWithScore('do cats purr', 2);
  assert.equal(hits.length, 2);
  assert.equal(hits[0][0].pageContent, 'cats purr');
  assert.equal(hits[0][0].metadata.kind, 'pet');
  assert.ok(hits[0][1] < hits[1][1], `scores ${hits[0][1]} ${hits[1][1]}`);
  const fish = await store.similaritySearch('fish', 1);
  assert.equal(fish[0].pageContent, 'fish swim');
  await store.delete({ deleteAll: true });
  assert.ok(!(await client.ft._list()).includes('lcdocs'));
  await client.quit();
}

const suites = { nodeRedis4, nodeRedisCurrent, ioredis, langchainVectorStore };
let failed = 0;
for (const [name, fn] of Object.entries(suites)) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAILED ${name}: ${e.stack || e}`);
  }
}
process.exit(failed ? 1 : 0);
