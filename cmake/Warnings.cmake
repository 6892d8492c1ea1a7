add_library(gpuhive_flags INTERFACE)
target_compile_options(gpuhive_flags INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers>
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${GPUHIVE_WERROR}>>:-Werror>)
if(GPUHIVE_SANITIZER STREQUAL "address")
  target_compile_options(gpuhive_flags INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined>)
  target_link_options(gpuhive_flags INTERFACE -fsanitize=address,undefined)
elseif(GPUHIVE_SANITIZER STREQUAL "thread")
  target_compile_options(gpuhive_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=thread -fno-omit-frame-pointer>)
  target_link_options(gpuhive_flags INTERFACE -fsanitize=thread)
endif()
