/**
 * Names of the constraints the repository turns into client errors. The migrations create them
 * under these names and the error mapping matches on them, so both sides share one constant.
 */
export const CONSTRAINTS = {
  deviceModelCodeUnique: 'device_models_code_key',
  deviceKeyUnique: 'devices_key_key',
  deviceKeyFormat: 'devices_key_format',
  deviceRotationState: 'devices_rotation_state_check',
  deviceConfigObject: 'devices_config_is_object',
  deviceModelFk: 'devices_device_model_id_fkey',
} as const;
