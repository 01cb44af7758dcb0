---@meta errors
-- LuaLS annotations for luastore's `errors` module: a global, and also `require("errors")`.

---An error value: what every failed host call returns second (`nil, err`). A userdata, so a
---script cannot change the kind of an error it received. `tostring(err)` and `..` give the message.
---@class errors.Error
local Error = {}

---The kind, e.g. "NotFound" (compare with the constants: `err:kind() == errors.NOT_FOUND`); "" when none.
---@return errors.Kind|string
function Error:kind() end

---@return string
function Error:message() end

---True when trying again later may succeed (a full pool, a version conflict).
---@return boolean
function Error:retryable() end

---The `details` table given to errors.new, or nil.
---@return table|nil
function Error:details() end

---@alias errors.Kind
---| "Invalid"
---| "NotFound"
---| "PermissionDenied"
---| "Unavailable"
---| "Internal"
---| "AlreadyExists"
---| "Conflict"
---| "Timeout"
---| "RateLimited"
---| "Canceled"
---| "RuntimeError"
---| "SyntaxError"
---| "InstructionLimit"
---| "MemoryLimit"
---| "StringLimit"
---| "StoreOpsLimit"
---| "OutputLimit"

---@class errors.NewOptions
---@field message string
---@field kind? errors.Kind|string
---@field retryable? boolean
---@field details? table

---@class errorslib
---@field INVALID "Invalid"
---@field NOT_FOUND "NotFound"
---@field PERMISSION_DENIED "PermissionDenied"
---@field UNAVAILABLE "Unavailable"
---@field INTERNAL "Internal"
---@field ALREADY_EXISTS "AlreadyExists"
---@field CONFLICT "Conflict"
---@field TIMEOUT "Timeout"
---@field RATE_LIMITED "RateLimited"
---@field CANCELED "Canceled"
---@field RUNTIME "RuntimeError"
---@field SYNTAX "SyntaxError"
---@field INSTRUCTION_LIMIT "InstructionLimit"
---@field MEMORY_LIMIT "MemoryLimit"
---@field STRING_LIMIT "StringLimit"
---@field STORE_OPS_LIMIT "StoreOpsLimit"
---@field OUTPUT_LIMIT "OutputLimit"
errors = {}

---A new error value: `errors.new("message")` (kind "") or `errors.new({ message =, kind =, retryable =, details = })`.
---@param message string|errors.NewOptions
---@return errors.Error
function errors.new(message) end

---True when `err` is an error value, of `kind` when given.
---@param err any
---@param kind? errors.Kind|string
---@return boolean
function errors.is(err, kind) end

return errors
