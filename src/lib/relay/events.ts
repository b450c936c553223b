import type { MailState } from '../server/db/schema.js';

/**
 * What happened to a mail, told after the change has committed. Plain JSON, so that the same
 * events can later cross processes (PostgreSQL LISTEN/NOTIFY) unchanged.
 */
interface MailEventBase {
  id: string;
  ownerId: number | null;
  clientIp: string;
  /** The state the mail is in after the change. */
  state: MailState;
  at: number;
}

export interface MailHeld extends MailEventBase {
  type: 'MailHeld';
  dueAt: number;
  subject: string;
  recipients: string[];
}
export interface MailQueued extends MailEventBase {
  type: 'MailQueued';
  /** Why it goes without (more) hold: excluded at intake, released by hand, or a notice. */
  reason: 'excluded' | 'released' | 'notice';
  by?: string;
}
export interface MailDiscarded extends MailEventBase {
  type: 'MailDiscarded';
  by: string;
}
export interface MailSending extends MailEventBase {
  type: 'MailSending';
}
export interface MailDeferred extends MailEventBase {
  type: 'MailDeferred';
  dueAt: number;
  reply: string;
}
export interface MailSent extends MailEventBase {
  type: 'MailSent';
}
export interface MailFailed extends MailEventBase {
  type: 'MailFailed';
  reply: string;
}

export type MailEvent = MailHeld | MailQueued | MailDiscarded | MailSending | MailDeferred | MailSent | MailFailed;

export type Listener = (event: MailEvent) => void;

export class EventBus {
  #listeners = new Set<Listener>();

  /** Returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(event: MailEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        // A listener's failure is its own; the mail's change has already committed.
      }
    }
  }
}
