// Package docs holds the project's documents (the *.md files beside this
// one) and no code. Its test, refs_test.go, keeps the repository's
// citations honest: every file name ending in .md that a comment, script or
// document mentions must exist in the repository, and every section a
// citation names (salesforce-api.md §2.4, design.md §2) must be a numbered
// heading of that document.
package docs
