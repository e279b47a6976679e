// RFC 6902 JSON Patch operations and RFC 6901 JSON Pointers.
// The planners build ops with these helpers; applyJsonPatch exists so tests can check round trips
// without a cluster (the API server applies the real patches).

export type JsonPatchOp =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move'; from: string; path: string }
  | { op: 'copy'; from: string; path: string };

/** Escapes one reference token per RFC 6901: `~` -> `~0`, then `/` -> `~1`. */
export function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Builds a JSON Pointer from unescaped reference tokens: pointer('metadata', 'a/b') === '/metadata/a~1b'. */
export function pointer(...tokens: readonly string[]): string {
  return tokens.map((t) => `/${escapePointerToken(t)}`).join('');
}

/** Splits a JSON Pointer into unescaped tokens; throws on a malformed pointer or escape. */
export function parsePointer(ptr: string): string[] {
  if (ptr === '') return [];
  if (!ptr.startsWith('/')) throw new Error(`JSON pointer ${JSON.stringify(ptr)} does not start with "/"`);
  return ptr
    .slice(1)
    .split('/')
    .map((raw) => {
      if (/~[^01]|~$/.test(raw)) throw new Error(`JSON pointer ${JSON.stringify(ptr)} has an invalid escape`);
      // Order matters (RFC 6901 §4): ~1 first, so "~01" decodes to "~1", not "/".
      return raw.replace(/~1/g, '/').replace(/~0/g, '~');
    });
}

/** Deep equality over JSON values (object key order ignored), as the `test` op defines it. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => hasOwn(bo, k) && jsonEqual(ao[k], bo[k]));
}

/**
 * Applies ops to a deep copy of doc and returns the copy; doc is not modified.
 * Throws (with the failing op in the message and the reason as cause) if any op fails, as RFC 6902
 * requires: a patch applies whole or not at all.
 */
export function applyJsonPatch<T>(doc: T, ops: readonly JsonPatchOp[]): T {
  let root: unknown = clone(doc);
  ops.forEach((op, i) => {
    try {
      root = applyOne(root, op);
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new Error(`applying JSON patch op #${i} (${op.op} ${op.path}): ${why}`, { cause });
    }
  });
  return root as T;
}

function applyOne(root: unknown, op: JsonPatchOp): unknown {
  switch (op.op) {
    case 'add':
      return addAt(root, parsePointer(op.path), clone(op.value));
    case 'remove':
      return removeAt(root, parsePointer(op.path));
    case 'replace': {
      const tokens = parsePointer(op.path);
      getAt(root, tokens); // the target must exist
      if (tokens.length === 0) return clone(op.value);
      return addAt(removeAt(root, tokens), tokens, clone(op.value));
    }
    case 'test':
      if (!jsonEqual(getAt(root, parsePointer(op.path)), op.value)) {
        throw new Error(`test failed: value at ${op.path} differs from ${JSON.stringify(op.value)}`);
      }
      return root;
    case 'move': {
      if (op.path === op.from) return root;
      if (op.path.startsWith(`${op.from}/`)) throw new Error(`cannot move ${op.from} into its own child ${op.path}`);
      const from = parsePointer(op.from);
      const value = getAt(root, from);
      return addAt(removeAt(root, from), parsePointer(op.path), value);
    }
    case 'copy':
      return addAt(root, parsePointer(op.path), clone(getAt(root, parsePointer(op.from))));
  }
}

function getAt(root: unknown, tokens: readonly string[]): unknown {
  let cur = root;
  for (const token of tokens) {
    if (Array.isArray(cur)) {
      const i = arrayIndex(token, cur.length - 1);
      cur = cur[i];
    } else if (isObject(cur)) {
      if (!hasOwn(cur, token)) throw new Error(`path member ${JSON.stringify(token)} does not exist`);
      cur = cur[token];
    } else {
      throw new Error(`cannot descend into ${describe(cur)} at ${JSON.stringify(token)}`);
    }
  }
  return cur;
}

function addAt(root: unknown, tokens: readonly string[], value: unknown): unknown {
  if (tokens.length === 0) return value;
  const parent = getAt(root, tokens.slice(0, -1));
  const last = tokens[tokens.length - 1] as string;
  if (Array.isArray(parent)) {
    if (last === '-') parent.push(value);
    else parent.splice(arrayIndex(last, parent.length), 0, value);
  } else if (isObject(parent)) {
    setOwn(parent, last, value);
  } else {
    throw new Error(`cannot add a member to ${describe(parent)}`);
  }
  return root;
}

function removeAt(root: unknown, tokens: readonly string[]): unknown {
  if (tokens.length === 0) throw new Error('cannot remove the document root');
  const parent = getAt(root, tokens.slice(0, -1));
  const last = tokens[tokens.length - 1] as string;
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(last, parent.length - 1), 1);
  } else if (isObject(parent)) {
    if (!hasOwn(parent, last)) throw new Error(`path member ${JSON.stringify(last)} does not exist`);
    delete parent[last];
  } else {
    throw new Error(`cannot remove a member of ${describe(parent)}`);
  }
  return root;
}

/** Parses an array index token; max is the highest index allowed. */
function arrayIndex(token: string, max: number): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`${JSON.stringify(token)} is not an array index`);
  const i = Number(token);
  if (i > max) throw new Error(`array index ${i} is out of bounds`);
  return i;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasOwn(o: object, key: string): boolean {
  return Object.hasOwn(o, key);
}

// defineProperty, not assignment: a member named "__proto__" must become data, not a prototype.
function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, writable: true, enumerable: true, configurable: true });
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}
