import type { Client } from '$lib/trpc';
import type { MailListItem } from '$lib/relay/api';
import type { MailChange } from '$lib/server/trpc/mail';

const ACTIVE = new Set(['held', 'queued', 'sending', 'deferred']);

export interface ListPage {
  items: MailListItem[];
  next: string | null;
  total: number;
  now: number;
}

/**
 * The hold page's list: the first page from the server, more pages on demand (a cursor, so
 * 10,000 held mails never render at once), kept current by `mail.changes` events: a new held mail
 * is put in its place by due time, a finished one leaves.
 */
export class HeldList {
  items = $state<MailListItem[]>([]);
  next = $state<string | null>(null);
  total = $state(0);
  loadedAt = $state(0);
  live = $state(false);
  #api: Client;
  #onNow: (serverNow: number) => void;

  constructor(api: Client, first: ListPage, onNow: (serverNow: number) => void) {
    this.#api = api;
    this.#onNow = onNow;
    this.#set(first);
  }

  #set(page: ListPage): void {
    this.items = page.items;
    this.next = page.next;
    this.total = page.total;
    this.loadedAt = page.now;
    this.#onNow(page.now);
  }

  held(): MailListItem[] {
    return this.items.filter((m) => m.state === 'held');
  }

  async reload(): Promise<void> {
    // Keep as many rows as are shown, so that a reload does not shrink a long list.
    const limit = Math.min(Math.max(this.items.length, 100), 500);
    this.#set(await this.#api.mail.list.query({ view: 'active', limit }));
  }

  async more(): Promise<void> {
    if (!this.next) return;
    const page = await this.#api.mail.list.query({ view: 'active', cursor: this.next, limit: 100 });
    const known = new Set(this.items.map((m) => m.id));
    this.items = [...this.items, ...page.items.filter((m) => !known.has(m.id))];
    this.next = page.next;
    this.total = page.total;
    this.#onNow(page.now);
  }

  remove(id: string): void {
    const before = this.items.length;
    this.items = this.items.filter((m) => m.id !== id);
    if (this.items.length < before) this.total = Math.max(0, this.total - 1);
  }

  #insert(item: MailListItem): void {
    if (this.items.some((m) => m.id === item.id)) return this.#update(item.id, item);
    this.total++;
    const last = this.items[this.items.length - 1];
    // Beyond the loaded pages it will come with "Load more".
    if (this.next && last && item.dueAt > last.dueAt) return;
    const at = this.items.findIndex((m) => m.dueAt > item.dueAt || (m.dueAt === item.dueAt && m.id > item.id));
    this.items = at === -1 ? [...this.items, item] : [...this.items.slice(0, at), item, ...this.items.slice(at)];
  }

  #update(id: string, patch: Partial<MailListItem>): void {
    this.items = this.items.map((m) => (m.id === id ? { ...m, ...patch } : m));
  }

  async apply(change: MailChange): Promise<void> {
    if (change.type === 'MailHeld') {
      if (change.item) this.#insert(change.item);
      return;
    }
    if (!ACTIVE.has(change.state)) return this.remove(change.id);
    if (this.items.some((m) => m.id === change.id)) {
      this.#update(change.id, { state: change.state, ...(change.dueAt ? { dueAt: change.dueAt } : {}), ...(change.reply ? { lastReply: change.reply } : {}) });
      return;
    }
    // An active mail we have not seen (excluded at intake, or sent while we were away).
    const detail = await this.#api.mail.get.query({ id: change.id }).catch(() => null);
    if (detail && ACTIVE.has(detail.state)) {
      const { recipientStates: _r, headers: _h, preview: _p, now: _n, ...item } = detail;
      this.#insert(item);
    }
  }

  /** Follows `mail.changes`; after every (re)connect the list is reloaded so no change is missed. */
  follow(): () => void {
    const sub = this.#api.mail.changes.subscribe(undefined, {
      onData: (change) => void this.apply(change),
      onConnectionStateChange: (s) => {
        const up = s.state === 'pending';
        if (up && !this.live) void this.reload().catch(() => {});
        this.live = up;
      },
      onError: () => (this.live = false),
      // The server ended the stream: shutting down, or this session is over.
      onComplete: () => (this.live = false),
    });
    return () => sub.unsubscribe();
  }
}
