// Covers: the `vus` and `vus_max` gauges as k6 reports them
// (`vu_gauges_match_k6`). SHAPE=constant: 200 VUs for 2 s, each
// requesting and sleeping 100 ms; SHAPE=pack: a warm-up of 50
// pre-allocated VUs, then a main phase of 200 starting at 1 s (the
// warm-up's graceful stop overlaps it, so k6 plans 250).
import http from 'k6/http';
import { sleep } from 'k6';

const BASE = __ENV.TARGET_URL;

const SHAPES = {
  constant: {
    main: { executor: 'constant-vus', vus: 200, duration: '2s' },
  },
  pack: {
    warm: {
      executor: 'constant-arrival-rate', rate: 20, timeUnit: '1s', duration: '1s',
      preAllocatedVUs: 50,
    },
    main: {
      executor: 'constant-arrival-rate', rate: 100, timeUnit: '1s', duration: '1s',
      preAllocatedVUs: 200, startTime: '1s',
    },
  },
};

const shape = __ENV.SHAPE || 'constant';
if (!SHAPES[shape]) {
  throw new Error(`SHAPE=${shape} is not one of ${Object.keys(SHAPES).join(', ')}`);
}

export const options = { scenarios: SHAPES[shape] };

export default function () {
  http.get(BASE);
  if (shape === 'constant') {
    sleep(0.1);
  }
}
