add_library(gpuhive_flags INTERFACE)
target_compile_options(gpuhive_flags INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers>
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${GPUHIVE_WERROR}>>:-Werror>
  # GCC 12 reports false positives from inlined std::string/vector code at -O3 (GCC bugs 105329,
  # 105651); they are not about our code.
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-Wno-restrict -Wno-stringop-overflow -Wno-stringop-overread>)
if(GPUHIVE_SANITIZER AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # Sanitizer instrumentation makes GCC 12 report std::variant/std::string moves as maybe-uninitialized.
  target_compile_options(gpuhive_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-maybe-uninitialized>)
endif()
if(GPUHIVE_SANITIZER STREQUAL "address")
  target_compile_options(gpuhive_flags INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined>)
  target_link_options(gpuhive_flags INTERFACE -fsanitize=address,undefined)
elseif(GPUHIVE_SANITIZER STREQUAL "thread")
  target_compile_options(gpuhive_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=thread -fno-omit-frame-pointer>)
  target_link_options(gpuhive_flags INTERFACE -fsanitize=thread)
endif()
