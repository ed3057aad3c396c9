#!/usr/bin/env bash
# update-assets.sh re-fetches the exact npm packages that the Playground
# vendors into assets/, checks each tarball against the integrity pinned below,
# copies only the files the page loads plus each package's LICENSE, and
# rewrites assets/VERSIONS.txt.
#
# The vendoring is meant to be reproducible: running this script on a clean
# tree must leave `git status playground/` unchanged. To upgrade a package,
# change its version and integrity here (npm view NAME@VERSION dist.integrity),
# run the script, and run `go test ./playground/...`, whose browser test
# proves the new bundle still works under the CSP.
#
# It uses `npm pack`, not `npm install`: that downloads the one tarball of each
# package and runs no install scripts, and the files we copy are prebuilt
# browser bundles that need none of the packages' dependencies.
set -euo pipefail

# name version integrity: "src:dst ..." (src inside the package, dst under assets/)
PACKAGES=(
	"graphiql 3.9.0 sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA== graphiql.min.js:graphiql.min.js graphiql.min.css:graphiql.min.css"
	"react 18.3.1 sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ== umd/react.production.min.js:react.production.min.js"
	"react-dom 18.3.1 sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw== umd/react-dom.production.min.js:react-dom.production.min.js"
)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
assets="$here/assets"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$assets/licenses"
versions="$work/VERSIONS.txt"
cat >"$versions" <<'EOF'
Third-party files vendored into playground/assets/ by playground/update-assets.sh.
Do not edit these files by hand: change the pins in that script and run it again.
Each tarball was checked against the npm integrity below before it was unpacked.

graphiql.min.js is GraphiQL's prebuilt UMD bundle. It includes its own
dependencies (graphql-js, @graphiql/react, CodeMirror 5, and others) and
expects React and ReactDOM as the globals that the two React files define.

EOF

for entry in "${PACKAGES[@]}"; do
	read -r name version integrity files <<<"$entry"
	dir="$work/$name"
	mkdir -p "$dir"
	tarball="$(cd "$dir" && npm pack --silent "$name@$version")"
	got="sha512-$(openssl dgst -sha512 -binary "$dir/$tarball" | base64 -w0)"
	if [[ "$got" != "$integrity" ]]; then
		echo "error verifying $name@$version: integrity is $got, want $integrity" >&2
		exit 1
	fi
	tar -xzf "$dir/$tarball" -C "$dir"

	{
		echo "$name@$version"
		echo "  tarball:   npm pack $name@$version"
		echo "  integrity: $integrity"
	} >>"$versions"

	for pair in $files; do
		src="${pair%%:*}"
		dst="${pair#*:}"
		cp "$dir/package/$src" "$assets/$dst"
		echo "  $dst <- package/$src sha256:$(sha256sum "$assets/$dst" | cut -d' ' -f1)" >>"$versions"
	done
	cp "$dir/package/LICENSE" "$assets/licenses/$name-LICENSE"
	echo "  licenses/$name-LICENSE <- package/LICENSE" >>"$versions"
	echo >>"$versions"
done

cp "$versions" "$assets/VERSIONS.txt"
echo "updated $assets"
