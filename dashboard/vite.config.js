// The build output is embedded in the api binary (api/src/dashboard.rs) under
// fixed names, so no hashes and no directory walk are needed there.
import { defineConfig } from 'vite';
import { worldMap } from './world.mjs';

// `import world from 'virtual:world-map'`: the map's country shapes, made
// from world-atlas at build time (world.mjs), so the page ships SVG path
// strings only.
const WORLD = 'virtual:world-map';
const worldPlugin = {
  name: 'world-map',
  resolveId: (id) => (id === WORLD ? `\0${WORLD}` : null),
  load: (id) => (id === `\0${WORLD}` ? `export default ${JSON.stringify(worldMap())};\n` : null),
};

export default defineConfig({
  base: '/',
  plugins: [worldPlugin],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    modulePreload: false,
    rollupOptions: {
      output: {
        entryFileNames: 'assets/app.js',
        chunkFileNames: 'assets/app-[name].js',
        assetFileNames: (info) => (info.names?.some((n) => n.endsWith('.css')) ? 'assets/app.css' : 'assets/[name][extname]'),
        inlineDynamicImports: true,
      },
    },
  },
});
