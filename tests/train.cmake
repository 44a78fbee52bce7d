# Tests of the training example (issue: bit-exact resume). Needs the examples to be built.
if(TARGET train_linear)
  ckpt_add_test(train.linear_adam train/test_linear_adam.cpp)
  target_include_directories(train.linear_adam PRIVATE ${PROJECT_SOURCE_DIR}/examples)

  # Bit-exact resume for every file backend ckpt::save knows.
  set(CKPT_RESUME_FORMATS native json safetensors npz pt)
  foreach(fmt IN LISTS CKPT_RESUME_FORMATS)
    ckpt_add_checked_test(NAME train.resume_exact.${fmt} EXPECT "resume exact: ${fmt} [0-9a-f]+"
             COMMAND ${CMAKE_COMMAND} -DTRAIN=$<TARGET_FILE:train_linear> -DWORK=${CMAKE_CURRENT_BINARY_DIR}/resume-${fmt}
                     -DFORMAT=${fmt} -DEPOCHS=6 -P ${CMAKE_CURRENT_SOURCE_DIR}/train/resume_exact.cmake)
  endforeach()
  ckpt_add_checked_test(NAME train.export_bundle EXPECT "bundle predictions equal"
           COMMAND ${CMAKE_COMMAND} -DTRAIN=$<TARGET_FILE:train_linear> -DPREDICT=$<TARGET_FILE:predict_linear>
                   -DWORK=${CMAKE_CURRENT_BINARY_DIR}/export-bundle -P ${CMAKE_CURRENT_SOURCE_DIR}/train/export_bundle.cmake)
endif()
