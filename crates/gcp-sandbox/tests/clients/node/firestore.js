// Google's Node.js Firestore client, over REST (`preferRest: true`), against the sandbox: documents, preconditions,
// server timestamps and increments, queries, and transactions that retry after a conflicting write.
//
// Usage: node firestore.js HOST:PORT   (exits non-zero on any mismatch)
const assert = require('node:assert/strict');
const { Firestore, FieldValue, Timestamp } = require('@google-cloud/firestore');
const { OAuth2Client } = require('google-auth-library');

const [host, port] = process.argv[2].split(':');
// Only the endpoint and the credentials (a fixed bearer token) change.
const authClient = new OAuth2Client();
authClient.setCredentials({ access_token: 'node-client-token' });
const db = new Firestore({
  projectId: 'node-project', host, port: Number(port), ssl: false, preferRest: true, authClient,
});

// Google's status name in a REST error (the fallback transport keeps the body's `status`).
const refusedWith = (status) => (err) => String(err.message).includes(`"status":"${status}"`);

async function main() {
  const events = db.collection('events');
  const first = events.doc('first');
  await first.set({ resource: 'projects/p/global/firewalls/a', count: 1, tags: ['x'], at: FieldValue.serverTimestamp() });
  const read = await first.get();
  assert.equal(read.exists, true);
  assert.equal(read.get('count'), 1);
  assert.ok(read.get('at') instanceof Timestamp, 'a server timestamp comes back as a Timestamp');

  // create() refuses an existing document; update() refuses a missing one.
  await assert.rejects(first.create({ count: 9 }), refusedWith('ALREADY_EXISTS'));
  await assert.rejects(events.doc('missing').update({ count: 1 }), refusedWith('NOT_FOUND'));

  await first.update({ count: FieldValue.increment(41), tags: FieldValue.arrayUnion('y', 'x') });
  const updated = (await first.get()).data();
  assert.equal(updated.count, 42);
  assert.deepEqual(updated.tags, ['x', 'y']);

  // An update guarded by the update time it read fails once someone else has written.
  const seen = (await first.get()).updateTime;
  await first.update({ count: 43 });
  await assert.rejects(first.update({ count: 44 }, { lastUpdateTime: seen }), refusedWith('FAILED_PRECONDITION'));

  for (let index = 0; index < 5; index += 1) {
    await events.doc(`e${index}`).set({ n: index, state: index % 2 ? 'done' : 'open' });
  }
  const open = await events.where('state', '==', 'open').where('n', '>=', 2).orderBy('n', 'desc').get();
  assert.deepEqual(open.docs.map((doc) => doc.id), ['e4', 'e2']);
  const limited = await events.orderBy('n').startAfter(1).limit(2).get();
  assert.deepEqual(limited.docs.map((doc) => doc.id), ['e2', 'e3']);
  const among = await events.where('n', 'in', [0, 3]).get();
  assert.deepEqual(among.docs.map((doc) => doc.id).sort(), ['e0', 'e3']);

  // A transaction whose read is overwritten before it commits is aborted (409 ABORTED; the client would retry it
  // after backing off for a minute, as it does against Google, so this attempt is its only one), and nothing it
  // wrote lands. The next transaction goes through.
  const counter = db.collection('counters').doc('fixes');
  await counter.set({ value: 0 });
  await assert.rejects(
    db.runTransaction(async (transaction) => {
      const snapshot = await transaction.get(counter);
      await counter.set({ value: 100 }); // another writer, outside the transaction
      transaction.update(counter, { value: snapshot.get('value') + 1 });
    }, { maxAttempts: 1 }),
    refusedWith('ABORTED'),
  );
  assert.equal((await counter.get()).get('value'), 100);
  await db.runTransaction(async (transaction) => {
    const snapshot = await transaction.get(counter);
    transaction.update(counter, { value: snapshot.get('value') + 1 });
  });
  assert.equal((await counter.get()).get('value'), 101);

  const batch = db.batch();
  batch.delete(events.doc('e0'));
  batch.set(events.doc('e9'), { n: 9 });
  await batch.commit();
  const all = await events.listDocuments();
  assert.ok(all.some((doc) => doc.id === 'e9') && !all.some((doc) => doc.id === 'e0'));
  await db.terminate();
  console.log('node firestore client: ok');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
