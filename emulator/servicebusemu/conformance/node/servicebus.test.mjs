// Runs @azure/service-bus (rhea underneath: a second, independent AMQP
// codec, drain-based receives, lock tokens rebuilt from the delivery tag)
// against the Go emulator. TestNodeClient in the Go package starts the
// emulator with the entities used here and passes its connection string.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { ServiceBusClient } from "@azure/service-bus";

const connectionString = process.env.SB_CONNECTION_STRING;
if (!connectionString) {
  throw new Error("SB_CONNECTION_STRING is not set; run through TestNodeClient");
}
const client = new ServiceBusClient(connectionString, {
  retryOptions: { maxRetries: 2, retryDelayInMs: 50, timeoutInMs: 10000 },
});
after(() => client.close());

const wait = { maxWaitTimeInMs: 5000 };

async function receiveOne(receiver) {
  const [m] = await receiver.receiveMessages(1, wait);
  assert.ok(m, "no message received");
  return m;
}

test("send, receive and complete", async () => {
  const sender = client.createSender("basic");
  await sender.sendMessages({ body: "hello", messageId: "m1", subject: "greeting", applicationProperties: { k: "v" } });
  const receiver = client.createReceiver("basic");
  const m = await receiveOne(receiver);
  assert.equal(m.body, "hello");
  assert.equal(m.messageId, "m1");
  assert.equal(m.subject, "greeting");
  assert.equal(m.applicationProperties.k, "v");
  assert.equal(m.deliveryCount, 0); // the JS SDK reports previous attempts
  assert.equal(m.sequenceNumber.toNumber(), 1);
  assert.ok(m.lockToken, "lock token");
  assert.ok(m.lockedUntilUtc instanceof Date);
  const renewed = await receiver.renewMessageLock(m); // lock token from the reordered delivery tag
  assert.ok(renewed instanceof Date);
  await receiver.completeMessage(m);
  const left = await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 });
  assert.equal(left.length, 0);
  await receiver.close();
  await sender.close();
});

test("abandon redelivers with the delivery count increased", async () => {
  const sender = client.createSender("abandon");
  await sender.sendMessages({ body: "retry" });
  const receiver = client.createReceiver("abandon");
  const first = await receiveOne(receiver);
  await receiver.abandonMessage(first);
  const second = await receiveOne(receiver);
  assert.equal(second.deliveryCount, first.deliveryCount + 1);
  assert.equal(second.sequenceNumber.toNumber(), first.sequenceNumber.toNumber());
  await receiver.completeMessage(second);
  await receiver.close();
  await sender.close();
});

test("dead-letter and read the dead-letter queue", async () => {
  const sender = client.createSender("deadletter");
  await sender.sendMessages([{ body: "bad" }, { body: "poison" }]);
  const receiver = client.createReceiver("deadletter");
  const bad = await receiveOne(receiver);
  await receiver.deadLetterMessage(bad, { deadLetterReason: "Invalid", deadLetterErrorDescription: "clientName is invalid" });
  // MaxDeliveryCount is 3 on this queue.
  for (let i = 0; i < 3; i++) {
    const m = await receiveOne(receiver);
    assert.equal(m.body, "poison");
    await receiver.abandonMessage(m);
  }
  const dlq = client.createReceiver("deadletter", { subQueueType: "deadLetter" });
  const got = await dlq.receiveMessages(2, wait);
  if (got.length < 2) got.push(...(await dlq.receiveMessages(2 - got.length, wait)));
  assert.equal(got.length, 2);
  const byBody = Object.fromEntries(got.map((m) => [m.body, m]));
  assert.equal(byBody.bad.deadLetterReason, "Invalid");
  assert.equal(byBody.bad.deadLetterErrorDescription, "clientName is invalid");
  assert.equal(byBody.poison.deadLetterReason, "MaxDeliveryCountExceeded");
  assert.equal(byBody.poison.deadLetterErrorDescription, "Message could not be consumed after 3 delivery attempts.");
  for (const m of got) await dlq.completeMessage(m);
  await dlq.close();
  await receiver.close();
  await sender.close();
});

test("defer and receive deferred", async () => {
  const sender = client.createSender("defer");
  await sender.sendMessages({ body: "later" });
  const receiver = client.createReceiver("defer");
  const m = await receiveOne(receiver);
  await receiver.deferMessage(m);
  const [d] = await receiver.receiveDeferredMessages(m.sequenceNumber);
  assert.ok(d, "deferred message");
  assert.equal(d.body, "later");
  assert.equal(d.state, "deferred");
  await receiver.completeMessage(d);
  const [again] = await receiver.peekMessages(1);
  assert.equal(again, undefined);
  await receiver.close();
  await sender.close();
});

test("peek", async () => {
  const sender = client.createSender("peek");
  await sender.sendMessages([{ body: "1" }, { body: "2" }, { body: "3" }]);
  const receiver = client.createReceiver("peek");
  const peeked = await receiver.peekMessages(3);
  assert.deepEqual(peeked.map((m) => m.body), ["1", "2", "3"]);
  assert.deepEqual(peeked.map((m) => m.sequenceNumber.toNumber()), [1, 2, 3]);
  const received = await receiver.receiveMessages(3, wait);
  assert.ok(received.length >= 1, "peek must not remove messages");
  await receiver.close();
  await sender.close();
});

test("scheduled messages", async () => {
  const sender = client.createSender("scheduled");
  const at = new Date(Date.now() + 700);
  const [seq, cancelled] = await sender.scheduleMessages([{ body: "later" }, { body: "never" }], at);
  await sender.cancelScheduledMessages(cancelled);
  const receiver = client.createReceiver("scheduled");
  const [peeked] = await receiver.peekMessages(1);
  assert.equal(peeked.state, "scheduled");
  const m = await receiveOne(receiver);
  assert.equal(m.body, "later");
  assert.equal(m.sequenceNumber.toNumber(), seq.toNumber());
  assert.ok(m.enqueuedTimeUtc.getTime() >= at.getTime() - 1);
  await receiver.completeMessage(m);
  const rest = await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 });
  assert.equal(rest.length, 0, "the cancelled message was delivered");
  await receiver.close();
  await sender.close();
});

test("topic fan-out to two subscriptions", async () => {
  const sender = client.createSender("fanout");
  await sender.sendMessages({ body: "event", subject: "registered" });
  for (const sub of ["a", "b"]) {
    const receiver = client.createReceiver("fanout", sub);
    const m = await receiveOne(receiver);
    assert.equal(m.body, "event");
    assert.equal(m.subject, "registered");
    await receiver.completeMessage(m);
    await receiver.close();
  }
  await sender.close();
});

test("sessions", async () => {
  const sender = client.createSender("sessions");
  await sender.sendMessages([
    { body: "a1", sessionId: "a" },
    { body: "b1", sessionId: "b" },
    { body: "a2", sessionId: "a" },
  ]);
  const a = await client.acceptSession("sessions", "a");
  assert.equal(a.sessionId, "a");
  assert.ok(a.sessionLockedUntilUtc instanceof Date);
  const got = [];
  while (got.length < 2) {
    for (const m of await a.receiveMessages(2, wait)) {
      assert.equal(m.sessionId, "a");
      got.push(m.body);
      await a.completeMessage(m);
    }
  }
  assert.deepEqual(got, ["a1", "a2"]);
  await a.setSessionState("done");
  assert.equal(String(await a.getSessionState()), "done");
  await a.renewSessionLock();
  const next = await client.acceptNextSession("sessions");
  assert.equal(next.sessionId, "b");
  const [b] = await next.receiveMessages(1, wait);
  assert.equal(b.body, "b1");
  await next.completeMessage(b);
  await next.close();
  await a.close();
  await sender.close();
});
