import { getContext, setContext } from 'svelte';
import { translator, type Locale, type Translate } from '$lib/i18n';

const KEY = Symbol('i18n');

export interface I18n {
  readonly locale: Locale;
  readonly t: Translate;
}

const translators = new Map<Locale, Translate>();

/** The root layout provides the language of the page; every component reads it with `i18n()`. */
export function provideI18n(locale: () => Locale): void {
  setContext<I18n>(KEY, {
    get locale() {
      return locale();
    },
    get t() {
      const l = locale();
      let t = translators.get(l);
      if (!t) translators.set(l, (t = translator(l)));
      return t;
    },
  });
}

export function i18n(): I18n {
  return getContext<I18n>(KEY);
}
