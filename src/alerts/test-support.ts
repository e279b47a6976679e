// Shared by the tests beside this file: a local HTTP server standing in for Slack's webhook, a pino
// logger whose lines are kept, and a check of Slack's message limits.

import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

import { pino, type Logger } from 'pino';

import { SLACK_LIMITS, type SlackBlock, type SlackMessage } from './slack-blocks.js';

/** A recognisable secret: the tests assert it never shows up in a log line. */
export const SECRET_PATH = '/services/T0SECRET1/B0SECRET2/xsecret-webhook-token-4f7a9c2e';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** When the request's body had fully arrived (Date.now()). */
  at: number;
}

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Wait this long before answering (a slow Slack). */
  delayMs?: number;
}

export interface Receiver {
  /** The webhook URL, secret path included. */
  url: string;
  requests: ReceivedRequest[];
  /** Parsed bodies, in arrival order. */
  messages(): SlackMessage[];
  close(): Promise<void>;
}

/** Starts a stand-in for Slack on 127.0.0.1 (a free port); `reply(n)` decides the answer to the n-th request (0-based). */
export async function startReceiver(reply: (index: number, request: ReceivedRequest) => Reply = () => ({})): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      const index = requests.push(request) - 1;
      const { status = 200, headers = {}, body = status === 200 ? 'ok' : '', delayMs = 0 } = reply(index, request);
      const answer = () => {
        if (res.destroyed) return;
        res.writeHead(status, { 'content-type': 'text/plain', ...headers });
        res.end(body);
      };
      if (delayMs === 0) answer();
      else {
        const timer = setTimeout(() => {
          timers.delete(timer);
          answer();
        }, delayMs);
        timers.add(timer);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${SECRET_PATH}`,
    requests,
    messages: () => requests.map((r) => JSON.parse(r.body) as SlackMessage),
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface CapturedLogs {
  logger: Logger;
  /** Raw lines as pino wrote them. */
  lines: string[];
  records(): { level: number; msg: string; [field: string]: unknown }[];
  /** Records at warn (40) or above. */
  warnings(): { level: number; msg: string; [field: string]: unknown }[];
}

/** A debug-level pino logger writing into memory; `sink` (if given) also gets every line. */
export function captureLogs(sink?: string[]): CapturedLogs {
  const lines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        lines.push(line);
        sink?.push(line);
      },
    },
  );
  const records = () => lines.map((line) => JSON.parse(line) as { level: number; msg: string; [field: string]: unknown });
  return { logger, lines, records, warnings: () => records().filter((r) => r.level >= 40) };
}

/** Fails unless the message is within every Slack limit that matters for an incoming webhook. */
export function assertWithinSlackLimits(message: SlackMessage): void {
  assert.ok(message.text.length > 0, 'text fallback is empty');
  assert.ok(message.text.length <= SLACK_LIMITS.fallbackTextChars, `text is ${message.text.length} chars`);
  assert.ok(message.blocks.length > 0, 'no blocks');
  assert.ok(message.blocks.length <= SLACK_LIMITS.blocksPerMessage, `${message.blocks.length} blocks`);
  for (const block of message.blocks) assertBlockWithinLimits(block);
}

function assertBlockWithinLimits(block: SlackBlock): void {
  switch (block.type) {
    case 'header':
      assert.equal(block.text.type, 'plain_text');
      assert.ok(block.text.text.length > 0 && block.text.text.length <= SLACK_LIMITS.headerChars, `header is ${block.text.text.length} chars`);
      break;
    case 'section':
      assert.ok(block.text || block.fields, 'section without text or fields');
      if (block.text) {
        assert.ok(block.text.text.length > 0, 'empty section text');
        assert.ok(block.text.text.length <= SLACK_LIMITS.sectionTextChars, `section text is ${block.text.text.length} chars`);
      }
      if (block.fields) {
        assert.ok(block.fields.length > 0 && block.fields.length <= SLACK_LIMITS.fieldsPerSection, `${block.fields.length} fields`);
        for (const field of block.fields) {
          assert.ok(field.text.length > 0 && field.text.length <= SLACK_LIMITS.fieldChars, `field is ${field.text.length} chars`);
        }
      }
      break;
    case 'context':
      assert.ok(block.elements.length > 0 && block.elements.length <= SLACK_LIMITS.contextElements, `${block.elements.length} context elements`);
      for (const element of block.elements) assert.ok(element.text.length <= SLACK_LIMITS.contextChars);
      break;
    case 'divider':
      break;
  }
}

/** All the text of a message, blocks included, for "does it mention X" checks. */
export function allText(message: SlackMessage): string {
  return JSON.stringify(message);
}

/** Text of the blocks only (not the fallback). */
export function blockText(message: SlackMessage): string {
  return JSON.stringify(message.blocks);
}
