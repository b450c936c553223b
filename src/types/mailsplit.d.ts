declare module 'mailsplit' {
  import { Transform } from 'node:stream';

  export interface MimeNodeHeaders {
    get(key: string): string[];
    getFirst(key: string): string;
    hasHeader(key: string): boolean;
  }

  export interface MimeNode {
    type: 'node';
    root: boolean;
    contentType: string | false;
    disposition: string | false;
    encoding: string | false;
    charset: string | false;
    multipart: string | false;
    filename: string | false;
    headers: MimeNodeHeaders;
    getHeaders(): Buffer;
  }

  export type SplitterChunk = MimeNode | { type: 'data'; value: Buffer } | { type: 'body'; value: Buffer; node: MimeNode };

  export class Splitter extends Transform {
    constructor(options?: { ignoreEmbedded?: boolean; maxHeadSize?: number });
  }
}
