// playground.js mounts GraphiQL into index.html. It lives in its own file, and
// reads its settings from <meta> tags that the Go handler renders, because the
// page's Content-Security-Policy allows no inline script.
(function () {
  'use strict';

  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute('content') : '';
  }

  var endpoint = meta('graphql-endpoint') || '/graphql';
  var defaultQuery = meta('graphql-default-query');

  // The bundle's scroll lock (used by GraphiQL's dialogs) injects a <style>
  // element and stamps it with this nonce when it is set, so that the CSP can
  // allow that one element instead of every inline style.
  var styleNonce = meta('csp-style-nonce');
  if (styleNonce) {
    window.__webpack_nonce__ = styleNonce;
  }

  // fetcher posts each operation as JSON. credentials: 'same-origin' sends the
  // session cookie, so the Playground runs as the signed-in user. A server
  // that speaks application/graphql-response+json answers errors with a
  // non-2xx status and a GraphQL body, so the body is shown whatever the
  // status; only a body that is not JSON becomes an error.
  function fetcher(params, opts) {
    var headers = {
      'Content-Type': 'application/json',
      'Accept': 'application/graphql-response+json, application/json'
    };
    var extra = (opts && opts.headers) || {};
    Object.keys(extra).forEach(function (k) { headers[k] = extra[k]; });

    return fetch(endpoint, {
      method: 'POST',
      credentials: 'same-origin',
      headers: headers,
      body: JSON.stringify(params)
    }).then(function (res) {
      return res.text().then(function (text) {
        try {
          return JSON.parse(text);
        } catch (e) {
          throw new Error('error reading GraphQL response (HTTP ' + res.status + '): ' + text.slice(0, 500));
        }
      });
    });
  }

  var props = { fetcher: fetcher };
  if (defaultQuery) {
    props.defaultQuery = defaultQuery;
  }
  ReactDOM.createRoot(document.getElementById('graphiql'))
    .render(React.createElement(GraphiQL, props));
})();
