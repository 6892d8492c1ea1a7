// Runtime: CompiledModel and ExecutionContext.
