// Covers: Response.submitForm() (POST to the action resolved against the
// page, the submit button's name and value, fields overriding; a GET form's
// values in the query) and Response.clickLink(), and their errors.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;
const PAGE = `<html><body>
<form id="post" method="post" action="echo?from=form"><input type="hidden" name="csrf" value="t k">
<input name="user" value="ann"><input type="submit" name="go" value="Sign in"></form>
<form id="search" action="/echo"><input name="q" value="shoes"><select name="size"><option value="40" selected>40</option></select></form>
<a id="next" href="status/201">next</a><a id="nohref">none</a>
</body></html>`;

export const options = {
  iterations: 1,
  thresholds: { checks: ['rate==1'] },
};

export default function () {
  const page = http.post(`${BASE}/echo`, PAGE, { headers: { 'Content-Type': 'text/html' } });
  const posted = page.submitForm({ formSelector: '#post', fields: { user: 'bob' } });
  check(posted, {
    'posted to the action resolved against the page': (r) => r.url === `${BASE}/echo?from=form`,
    'the form body, the submit button and the override': (r) => r.body === 'csrf=t+k&go=Sign+in&user=bob',
  });
  const searched = page.submitForm({ formSelector: '#search' });
  check(searched, {
    'a GET form puts its values in the query': (r) => r.url === `${BASE}/echo?q=shoes&size=40` && r.status === 200,
  });
  check(page.clickLink({ selector: '#next' }), {
    'a link resolved against the page': (r) => r.status === 201 && r.url === `${BASE}/status/201`,
  });
  let missing = '';
  try { page.submitForm({ formSelector: '#none' }); } catch (e) { missing = String(e); }
  check(missing, { 'no form is an error': (m) => m.includes("no form found for selector '#none'") });
  let nohref = '';
  try { page.clickLink({ selector: '#nohref' }); } catch (e) { nohref = String(e); }
  check(nohref, { 'no href is an error': (m) => m.includes('no valid href attribute') });
}
