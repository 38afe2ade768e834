"""The workflow engine as the core runs it: which stored version a ticket runs on and its
compiled machine, and the admin's side: drafts, simulation against history, publishing.

The engine itself (definition schema, validation, Machine builder, rules, SLA math,
simulation) is pure and lives in the top-level ``workflows`` package.
"""
