// See https://svelte.dev/docs/kit/types#app.d.ts
import type { Locale } from '$lib/i18n';

declare global {
  namespace App {
    interface Locals {
      user: { id: number; email: string; isAdmin: boolean } | null;
      locale: Locale;
    }
    // interface Error {}
    // interface PageData {}
    // interface PageState {}
    // interface Platform {}
  }
}

export {};
