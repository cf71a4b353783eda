// Package explain answers, for a person, what the reconciler decides about a Backup and
// why: the command TiDB Operator works on and how it is derived, the effective policy and
// where each value came from, the open episode as a timeline, the decision, what happens
// next, and which limit would end the episode first. Every decision in it is
// retry.Decide's, on the input the reconciler builds on its fresh path
// (reconciler.DecideNow), so the tool cannot describe a rule the reconciler does not
// follow. Describe builds the Explanation; WriteText prints it.
package explain
