import adapter from '@sveltejs/adapter-node';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
export default {
  preprocess: vitePreprocess(),
  kit: {
    adapter: adapter({ out: 'build' }),
    // The hook checks the origin of every changing request itself (src/lib/server/auth/csrf.ts):
    // SvelteKit's check needs ORIGIN to be set and covers form posts only.
    csrf: { trustedOrigins: ['*'] },
    // Subjects, names and file names are attacker-controlled: even if one slipped through as
    // markup, nothing but our own scripts and styles may run or load.
    csp: {
      mode: 'auto',
      directives: {
        'default-src': ['self'],
        'script-src': ['self'],
        // The one style attribute allowed: SvelteKit's route announcer (its exact text, hashed).
        'style-src': ['self', 'unsafe-hashes', 'sha256-S8qMpvofolR8Mpjy4kQvEm7m1q8clzU4dfDH0AmvZjo='],
        'img-src': ['self', 'data:'],
        'font-src': ['self'],
        'connect-src': ['self'],
        'manifest-src': ['self'],
        'worker-src': ['self'],
        'object-src': ['none'],
        'base-uri': ['none'],
        'form-action': ['self'],
        'frame-ancestors': ['none'],
      },
    },
  },
};
