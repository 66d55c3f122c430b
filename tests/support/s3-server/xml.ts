/** S3's XML: replies are written by hand (a tree of plain values), requests parsed with fast-xml-parser. */
import { XMLParser } from 'fast-xml-parser';
import type { S3Error } from './errors.js';
import { errors } from './errors.js';

export type XmlValue = string | number | boolean | undefined | XmlNode | XmlValue[];
export interface XmlNode {
  [name: string]: XmlValue;
}

const escape = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!,
  );

function element(name: string, value: XmlValue): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.map((v) => element(name, v)).join('');
  if (typeof value === 'object') return `<${name}>${children(value)}</${name}>`;
  return `<${name}>${escape(String(value))}</${name}>`;
}

const children = (node: XmlNode) =>
  Object.entries(node)
    .map(([k, v]) => element(k, v))
    .join('');

/** A reply document: `<Root xmlns="…">…</Root>`. */
export function xmlDocument(root: string, body: XmlNode): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<${root} xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${children(body)}</${root}>`
  );
}

export function errorDocument(
  error: S3Error,
  requestId: string,
  resource: Record<string, string>,
): string {
  const body = {
    Code: error.code,
    Message: error.message,
    ...resource,
    ...error.fields,
    RequestId: requestId,
  };
  return `<?xml version="1.0" encoding="UTF-8"?>\n${element('Error', body)}`;
}

const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: true });

/** Parses a request body; the root element must be `root`. Anything malformed is MalformedXML. */
export function parseXml(text: string, root: string): XmlNode {
  let doc: unknown;
  try {
    doc = parser.parse(text, true);
  } catch {
    throw errors.malformedXML();
  }
  const node = (doc as XmlNode)[root];
  if (node === undefined || node === null) throw errors.malformedXML();
  return typeof node === 'object' && !Array.isArray(node) ? node : {};
}

/** A child that may occur once or many times, as a list. */
export const list = (v: XmlValue): XmlValue[] =>
  v === undefined || v === '' ? [] : Array.isArray(v) ? v : [v];

export const text = (v: XmlValue): string | undefined => (typeof v === 'string' ? v : undefined);
